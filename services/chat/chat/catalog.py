"""The chat models the platform offers and what each costs: the one table that both the model
list (`ListModels`, the gateway's `/v1/models`) and the check of every request read.

A model name goes to a paid provider as it is, so only priced models are offered: each
configured provider's default model, at `CHAT_PRICE`, and the models priced in
`CHAT_MODEL_PRICES` that a configured provider serves. Anything else is refused before
credits are held or a provider is called. A `max_tokens` above the model's priced cap is
clamped to the cap (as a provider clamps to its model's limit): the answer stops there with
`finish_reason` "length", and the hold covers the cap, so no request costs more than its price.
Every offered model must have a USD list price too (`provider_costs.py`), so that no answer is
recorded as free: the service refuses to start otherwise."""

from __future__ import annotations

from collections.abc import Sequence

from chat import credit_prices, offers
from chat.credit_prices import ModelPrice
from chat.offers import Offer
from chat.provider_costs import CostTable
from chat.providers.base import ChatProvider, ProviderRequest
from common.contracts import ModelInfo


class ModelCatalog:
    def __init__(self, offers: Sequence[Offer], *, default_model: str) -> None:
        self._offers = {o.model: o for o in offers}
        if default_model not in self._offers:
            raise ValueError(f"the default chat model {default_model!r} is not offered; offered: {self._names()}")
        self.default_model = default_model

    @classmethod
    def build(
        cls,
        providers: Sequence[ChatProvider],
        *,
        default_model: str | None,
        default_price: ModelPrice,
        prices: dict[str, ModelPrice],
        costs: CostTable,
    ) -> ModelCatalog:
        """The offers of `providers`, in failover order: each one's default model, then the priced models it serves."""
        found = offers.collect(providers, default_price=default_price, prices=prices, costs=costs, kind="chat")
        return cls([offer for offer, _ in found.values()], default_model=default_model or providers[0].default_model)

    @property
    def models(self) -> list[ModelInfo]:
        return offers.listed(self._offers.values())

    def resolve(self, model: str | None, max_tokens: int | None) -> tuple[str, int]:
        """The model a request runs on and the answer tokens it is sent with (`max_tokens`, at
        most the model's priced cap); NotFound for a model that is not offered."""
        name = model or self.default_model
        offer = self._offers.get(name)
        if offer is None:
            raise offers.not_offered(name, self._offers, kind="chat")
        cap = offer.price.max_tokens
        return name, min(max_tokens or cap, cap)

    def window(self, model: str) -> int:
        """The context window of an offered model, in the reservation's token estimate."""
        return self._offers[model].price.context_window

    def reservation(self, request: ProviderRequest, *, prompt_tokens: int | None = None) -> int:
        """The most `request` can cost (its model and `max_tokens` resolved); `prompt_tokens`: its
        messages' token bound, when counted already (a thread's context is, as it is fitted)."""
        assert request.max_tokens is not None
        price = self._offers[request.model].price
        definitions = credit_prices.definition_tokens(
            *(t.model_dump(exclude_none=True) for t in request.tools),
            request.response_format.model_dump(exclude_none=True) if request.response_format else None,
        )
        return credit_prices.reservation(
            price,
            messages=request.messages,
            max_tokens=request.max_tokens,
            n=request.n,
            definitions=definitions,
            prompt_tokens=prompt_tokens,
        )

    def charge(self, request: ProviderRequest, *, total_tokens: int, reserved: int) -> int:
        """What an answer of `total_tokens` costs, never more than the `reserved` hold."""
        price = self._offers[request.model].price
        return credit_prices.charge(price, total_tokens=total_tokens, reserved=reserved, n=request.n)

    def _names(self) -> str:
        return ", ".join(self._offers)
