from __future__ import annotations

import pytest

from chat.catalog import ModelCatalog
from chat.credit_prices import ModelPrice
from chat.provider_costs import CostTable
from chat.providers import LocalProvider
from common.errors import NotFound
from tests.support.chat_fakes import ScriptedProvider

pytestmark = pytest.mark.unit

GEMINI = ScriptedProvider("gemini", prefixes=("gemini-",))
GEMINI.default_model = "gemini-2.5-flash"
OPENAI = ScriptedProvider("openai", prefixes=("gpt-",))
OPENAI.default_model = "gpt-4o-mini"


def catalog(prices: dict[str, ModelPrice] | None = None, *, default_model: str | None = None) -> ModelCatalog:
    return ModelCatalog.build(
        [GEMINI, OPENAI],
        default_model=default_model,
        default_price=ModelPrice(max_tokens=100),
        prices=prices or {},
        costs=CostTable({}),
    )


def test_only_the_defaults_and_the_priced_models_a_provider_serves_are_offered() -> None:
    offered = catalog({"gpt-4o": ModelPrice(per_request=5), "claude-3": ModelPrice()})
    assert [(m.id, m.provider) for m in offered.models] == [
        ("gemini-2.5-flash", "gemini"),
        ("gpt-4o-mini", "openai"),
        ("gpt-4o", "openai"),
    ]
    assert offered.resolve(None, None) == ("gemini-2.5-flash", 100)
    assert offered.resolve("gpt-4o", 7) == ("gpt-4o", 7)


def test_max_tokens_above_the_priced_cap_is_clamped_to_the_cap() -> None:
    assert catalog().resolve(None, 101) == ("gemini-2.5-flash", 100)
    assert catalog().resolve(None, 32_768) == ("gemini-2.5-flash", 100)


@pytest.mark.parametrize(
    ("model", "max_tokens", "error"),
    [("gpt-4o", None, NotFound), ("gemini-2.5-pro", None, NotFound)],
)
def test_anything_else_is_refused(model: str | None, max_tokens: int | None, error: type[Exception]) -> None:
    with pytest.raises(error):
        catalog().resolve(model, max_tokens)


def test_a_model_without_a_usd_price_or_an_unoffered_default_refuses_to_start() -> None:
    with pytest.raises(ValueError, match="gpt-5-turbo"):
        catalog({"gpt-5-turbo": ModelPrice()})
    with pytest.raises(ValueError, match="gpt-4o"):
        catalog(default_model="gpt-4o")


def test_the_local_provider_costs_nothing_and_serves_any_priced_name() -> None:
    local = ModelCatalog.build(
        [LocalProvider()],
        default_model=None,
        default_price=ModelPrice(),
        prices={"big": ModelPrice()},
        costs=CostTable({}),
    )
    assert [m.id for m in local.models] == ["local-echo-1", "big"]


def test_each_model_has_its_context_window_and_it_must_leave_room_for_a_prompt() -> None:
    offered = catalog({"gpt-4o": ModelPrice(max_tokens=100, context_window=1000)})
    assert (offered.window("gpt-4o"), offered.window("gemini-2.5-flash")) == (1000, 128_000)
    with pytest.raises(ValueError, match="no room"):
        ModelPrice(max_tokens=500, context_window=500)
