from __future__ import annotations

import pytest

from chat.provider_costs import CostTable

pytestmark = pytest.mark.unit


def test_a_dated_snapshot_is_costed_as_the_model_it_is_a_snapshot_of() -> None:
    costs = CostTable({})
    dated = costs.usd(provider="openai", model="gpt-4o-mini-2024-07-18", prompt_tokens=1_000_000, completion_tokens=0)
    assert dated == costs.usd(provider="openai", model="gpt-4o-mini", prompt_tokens=1_000_000, completion_tokens=0)
    assert dated == 0.15  # gpt-4o-mini's price, not gpt-4o's


def test_an_unknown_model_costs_zero() -> None:
    assert CostTable({}).usd(provider="openai", model="gpt-9", prompt_tokens=10, completion_tokens=10) == 0.0
