"""What a catalog offers (`chat.catalog` for chat, `chat.embedding_catalog` for embeddings): each
configured provider's default model at the default price, then the models priced in the settings
that a provider serves, in failover order; each with a USD list price (`provider_costs.py`), so
that no answer is recorded as free. A model that is not offered is refused as OpenAI refuses a
model it does not have: 404, naming the field and the models there are."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from chat.credit_prices import ModelPrice
from chat.provider_costs import CostTable
from common.contracts import ModelInfo
from common.errors import NotFound


@dataclass(frozen=True, slots=True)
class Offer:
    model: str
    provider: str
    price: ModelPrice


class Provider(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def default_model(self) -> str: ...

    def owns(self, model: str) -> bool: ...


def collect[P: Provider](
    providers: Sequence[P],
    *,
    default_price: ModelPrice,
    prices: Mapping[str, ModelPrice],
    costs: CostTable,
    kind: str,
) -> dict[str, tuple[Offer, P]]:
    """The offers of `providers` by model, each with the provider serving it (the first that does);
    ValueError naming the `kind` of models that have no USD price."""
    offers: dict[str, tuple[Offer, P]] = {}
    for provider in providers:
        for model in (provider.default_model, *(m for m in prices if provider.owns(m))):
            if model not in offers:
                offers[model] = (Offer(model, provider.name, prices.get(model, default_price)), provider)
    unpriced = [model for model, (offer, _) in offers.items() if offer.provider != "local" and not costs.priced(model)]
    if unpriced:
        raise ValueError(f"{kind} models without a USD price (add them to CHAT_USD_PRICES): {', '.join(unpriced)}")
    return offers


def listed(offers: Iterable[Offer]) -> list[ModelInfo]:
    """The offers as the model list shows them."""
    return [ModelInfo(id=o.model, provider=o.provider) for o in offers]


def not_offered(model: str, offered: Iterable[str], *, kind: str) -> NotFound:
    names = list(offered)
    return NotFound(
        f"model {model!r} is not offered for {kind}; choose one of: {', '.join(names)}",
        errors=[{"field": "body.model", "message": "unknown model", "type": "value_error"}],
        models=names,
    )
