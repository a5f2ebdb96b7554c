"""The embedding models the platform offers and what each costs, as `chat.catalog` does for chat:
each configured provider's default embedding model at `EMBEDDING_PRICE`, and the models priced in
`EMBEDDING_MODEL_PRICES` that a configured provider serves. Anything else is refused (404) before
credits are held or a provider is called. A request is held at its inputs' bytes (no tokenizer
makes more tokens than bytes) and charged for the tokens the provider counted, never more than held."""

from __future__ import annotations

from collections.abc import Sequence

from chat import credit_prices, offers
from chat.credit_prices import ModelPrice
from chat.offers import Offer
from chat.provider_costs import CostTable
from chat.providers.embedding import EmbeddingProvider, EmbeddingRequest
from common.contracts import ModelInfo
from common.contracts.embeddings import MAX_VALUES
from common.errors import BadRequest


class EmbeddingCatalog:
    def __init__(self, offers: Sequence[Offer], *, sizes: dict[str, int | None] | None = None) -> None:
        self._offers = {o.model: o for o in offers}
        self._sizes = sizes or {}

    @classmethod
    def build(
        cls,
        providers: Sequence[EmbeddingProvider],
        *,
        default_price: ModelPrice,
        prices: dict[str, ModelPrice],
        costs: CostTable,
    ) -> EmbeddingCatalog:
        found = offers.collect(providers, default_price=default_price, prices=prices, costs=costs, kind="embedding")
        return cls(
            [offer for offer, _ in found.values()],
            sizes={model: provider.max_dimensions(model) for model, (_, provider) in found.items()},
        )

    @property
    def names(self) -> list[str]:
        return list(self._offers)

    @property
    def models(self) -> list[ModelInfo]:
        return offers.listed(self._offers.values())

    def resolve(self, model: str, *, dimensions: int | None = None, inputs: int = 1) -> Offer:
        """The offer of `model`; NotFound (as OpenAI answers a model it does not have) when there is none,
        BadRequest when `dimensions` asks for longer vectors than the model gives, or when `inputs`
        vectors of that length would be more than one reply carries (MAX_VALUES)."""
        offer = self._offers.get(model)
        if offer is None:
            raise offers.not_offered(model, self._offers, kind="embeddings")
        size = self._sizes.get(model)
        if dimensions is not None and size is not None and dimensions > size:
            raise BadRequest(
                f"model {model!r} gives vectors of at most {size} dimensions; {dimensions} were asked for",
                errors=[{"field": "body.dimensions", "message": f"at most {size}", "type": "less_than_equal"}],
            )
        length = dimensions or size
        if length is not None and inputs * length > MAX_VALUES:
            raise BadRequest(
                f"{inputs} vectors of {length} dimensions are more than one request returns ({MAX_VALUES:,} "
                "numbers): send fewer inputs at a time, or ask for fewer dimensions",
                errors=[{"field": "body.input", "message": "too many inputs", "type": "too_long"}],
            )
        return offer

    def reservation(self, request: EmbeddingRequest) -> int:
        return credit_prices.embedding_reservation(self._offers[request.model].price, inputs=request.inputs)

    def charge(self, request: EmbeddingRequest, *, prompt_tokens: int) -> int:
        price = self._offers[request.model].price
        return credit_prices.charge(price, total_tokens=prompt_tokens, reserved=self.reservation(request))
