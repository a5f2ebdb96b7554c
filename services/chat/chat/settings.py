from __future__ import annotations

from pydantic import Field

from chat.pricing import ModelPrice
from common.settings import CommonSettings


class ChatSettings(CommonSettings):
    service_name: str = "chat"
    default_model: str = Field("local-echo-1", description="Model used when a request names none.")
    chat_price: ModelPrice = Field(
        default_factory=ModelPrice, description='Default price, JSON: {"per_request": 1, "per_1k_tokens": 0}.'
    )
    chat_model_prices: dict[str, ModelPrice] = Field(
        default_factory=dict, description='Prices by model, JSON: {"gpt-4o": {"per_request": 2}}.'
    )
    local_latency_s: float = Field(
        0.0, ge=0, le=60, description="Simulated thinking time of the offline `local` provider."
    )
