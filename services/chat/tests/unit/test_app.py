from __future__ import annotations

import pytest

from chat.app import providers
from chat.settings import ChatSettings

pytestmark = pytest.mark.unit


async def test_gemini_goes_first_then_openai_when_both_keys_are_set() -> None:
    chain = providers(ChatSettings(gemini_api_key="g", openai_api_key="o"))
    assert [p.name for p in chain] == ["gemini", "openai"]
    assert [p.default_model for p in chain] == ["gemini-2.5-flash", "gpt-4o-mini"]
    for provider in chain:
        await provider.aclose()


@pytest.mark.parametrize(
    "keys", [{"gemini_api_key": None, "openai_api_key": None}, {"gemini_api_key": "", "openai_api_key": " "}]
)
def test_without_keys_the_offline_provider_answers(keys: dict[str, str | None]) -> None:
    assert [p.name for p in providers(ChatSettings(**keys))] == ["local"]  # type: ignore[arg-type]


async def test_one_key_one_provider() -> None:
    chain = providers(ChatSettings(gemini_api_key=None, openai_api_key="o", openai_base_url="http://127.0.0.1:9/v1"))
    assert [p.name for p in chain] == ["openai"]
    await chain[0].aclose()
