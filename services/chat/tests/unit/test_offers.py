from __future__ import annotations

import pytest

from chat import offers
from chat.credit_prices import ModelPrice
from chat.provider_costs import CostTable
from tests.support.chat_fakes import ScriptedProvider

pytestmark = pytest.mark.unit

DEFAULT = ModelPrice(max_tokens=100)


def provider(name: str, default_model: str, *prefixes: str) -> ScriptedProvider:
    made = ScriptedProvider(name, prefixes=prefixes)
    made.default_model = default_model
    return made


def test_each_model_is_offered_once_by_the_first_provider_that_serves_it_in_failover_order() -> None:
    first = provider("gemini", "gemini-2.5-flash", "gemini-", "shared-")
    second = provider("openai", "gpt-4o-mini", "gpt-", "shared-")
    found = offers.collect(
        [first, second],
        default_price=DEFAULT,
        prices={"gpt-4o": ModelPrice(per_request=5), "shared-1": ModelPrice(per_request=2)},
        costs=CostTable({"shared-1": {"input_per_1m": 1, "output_per_1m": 1}}),
        kind="chat",
    )
    assert [(model, offer.provider, serving.name) for model, (offer, serving) in found.items()] == [
        ("gemini-2.5-flash", "gemini", "gemini"),
        ("shared-1", "gemini", "gemini"),
        ("gpt-4o-mini", "openai", "openai"),
        ("gpt-4o", "openai", "openai"),
    ]
    assert found["gpt-4o"][0].price.per_request == 5
    assert found["gpt-4o-mini"][0].price == DEFAULT
    assert [m.id for m in offers.listed(offer for offer, _ in found.values())] == list(found)


def test_a_model_without_a_usd_price_is_refused_naming_its_kind() -> None:
    with pytest.raises(ValueError, match=r"^embedding models without a USD price .*: made-up-model$"):
        offers.collect(
            [provider("openai", "made-up-model", "made-")],
            default_price=DEFAULT,
            prices={},
            costs=CostTable({}),
            kind="embedding",
        )


def test_a_model_not_offered_is_a_404_naming_the_field_and_the_models_there_are() -> None:
    error = offers.not_offered("gpt-9", ["gpt-4o-mini", "gpt-4o"], kind="chat")
    assert error.status == 404
    assert "gpt-9" in str(error) and "gpt-4o-mini, gpt-4o" in str(error)
    extra = error.to_body().extra
    assert extra["errors"] == [{"field": "body.model", "message": "unknown model", "type": "value_error"}]
    assert extra["models"] == ["gpt-4o-mini", "gpt-4o"]
