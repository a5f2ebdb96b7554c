"""What an image costs, by model, and which models may be asked for at all.

A model name goes to a paid provider as it is, so only priced models are accepted: the
default model and those listed in IMAGE_MODEL_PRICES. Anything else is refused up front,
before credits are held or a provider is called.
"""

from __future__ import annotations

from common.errors import NotFound


class ImagePricing:
    def __init__(self, *, default_model: str, default_price: int, by_model: dict[str, int]) -> None:
        self.default_model = default_model
        self._prices = {default_model: default_price, **by_model}

    @property
    def models(self) -> list[str]:
        return sorted(self._prices)

    def resolve(self, requested: str | None) -> str:
        """The model a request runs on; NotFound (as OpenAI answers) for a model that is not offered."""
        model = requested or self.default_model
        if model not in self._prices:
            raise NotFound(
                f"model {model!r} is not offered; choose one of: {', '.join(self.models)}",
                errors=[{"field": "body.model", "message": "unknown model", "type": "value_error"}],
            )
        return model

    def price(self, model: str) -> int:
        return self._prices[model]
