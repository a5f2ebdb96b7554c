"""Estimated provider cost of an answer in US dollars, from a price table per model.

The defaults are the providers' published list prices per million tokens (standard tier,
text, 2025); `CHAT_USD_PRICES` overrides or extends them. Every offered model must be in the
table (`catalog.py`). A provider may name the model that answered by a dated snapshot of it
(`gpt-4o-mini-2024-07-18`): that is costed as the longest table entry it starts with. A model
still missing is costed at 0 and logged once, so it shows up in the logs."""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)


class UsdPrice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_1m: float = Field(ge=0, description="US dollars per million prompt tokens.")
    output_per_1m: float = Field(ge=0, description="US dollars per million answer tokens.")


DEFAULT_USD_PRICES: dict[str, UsdPrice] = {
    "gemini-2.5-flash": UsdPrice(input_per_1m=0.30, output_per_1m=2.50),
    "gemini-2.5-flash-lite": UsdPrice(input_per_1m=0.10, output_per_1m=0.40),
    "gemini-2.5-pro": UsdPrice(input_per_1m=1.25, output_per_1m=10.00),
    "gpt-4o-mini": UsdPrice(input_per_1m=0.15, output_per_1m=0.60),
    "gpt-4o": UsdPrice(input_per_1m=2.50, output_per_1m=10.00),
    "gpt-4.1-mini": UsdPrice(input_per_1m=0.40, output_per_1m=1.60),
    "gpt-4.1": UsdPrice(input_per_1m=2.00, output_per_1m=8.00),
    "local-echo-1": UsdPrice(input_per_1m=0.0, output_per_1m=0.0),
    "text-embedding-3-small": UsdPrice(input_per_1m=0.02, output_per_1m=0.0),
    "text-embedding-3-large": UsdPrice(input_per_1m=0.13, output_per_1m=0.0),
    "gemini-embedding-001": UsdPrice(input_per_1m=0.15, output_per_1m=0.0),
    "local-embed-1": UsdPrice(input_per_1m=0.0, output_per_1m=0.0),
}


class CostTable:
    def __init__(self, prices: dict[str, UsdPrice]) -> None:
        self._prices = {**DEFAULT_USD_PRICES, **prices}
        self._unpriced: set[str] = set()

    def priced(self, model: str) -> bool:
        return model in self._prices

    def _price(self, model: str) -> UsdPrice | None:
        if model in self._prices:
            return self._prices[model]
        stems = [name for name in self._prices if model.startswith(f"{name}-")]
        return self._prices[max(stems, key=len)] if stems else None

    def usd(self, *, provider: str, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        price = self._price(model)
        if price is None:
            if provider != "local" and model not in self._unpriced:
                self._unpriced.add(model)
                log.warning("no USD price for model; its cost is recorded as 0", extra={"model": model})
            return 0.0
        cost = (prompt_tokens * price.input_per_1m + completion_tokens * price.output_per_1m) / 1_000_000
        return round(cost, 8)
