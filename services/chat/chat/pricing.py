"""What a chat answer costs in credits, by model: a price per request plus, optionally, a
price per 1,000 tokens. The reservation covers the most an answer can cost; the commit
charges what it did cost."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field


class ModelPrice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    per_request: int = Field(1, ge=0, description="Credits per answer.")
    per_1k_tokens: int = Field(0, ge=0, description="Credits per 1,000 tokens in and out.")
    max_tokens: int = Field(4096, ge=1, description="Most tokens one exchange is charged for; sizes the reservation.")


class ChatPricing:
    def __init__(self, *, default: ModelPrice, by_model: dict[str, ModelPrice]) -> None:
        self._default = default
        self._by_model = by_model

    def price(self, model: str) -> ModelPrice:
        return self._by_model.get(model, self._default)

    def reservation(self, model: str) -> int:
        p = self.price(model)
        return max(1, p.per_request + math.ceil(p.per_1k_tokens * p.max_tokens / 1000))

    def charge(self, model: str, *, total_tokens: int) -> int:
        p = self.price(model)
        tokens = min(total_tokens, p.max_tokens)
        return min(self.reservation(model), p.per_request + math.ceil(p.per_1k_tokens * tokens / 1000))
