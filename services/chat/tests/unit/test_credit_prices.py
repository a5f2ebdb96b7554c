"""The price rule for what a request may carry beyond text: n choices, images, tools and schemas."""

from __future__ import annotations

import pytest

from chat import credit_prices
from chat.credit_prices import FRAMING_TOKENS, ModelPrice
from common.contracts import ChatMessage
from common.contracts.chatfeatures import ImageInput, ToolCall

pytestmark = pytest.mark.unit

TOKEN_PRICE = ModelPrice(per_request=2, per_1k_tokens=1000, max_tokens=10, image_tokens=85)  # a credit a token


def test_each_choice_is_held_at_its_cap_and_charged_its_request_price() -> None:
    messages = [ChatMessage(role="user", content="hi")]
    prompt = 2 + FRAMING_TOKENS + FRAMING_TOKENS
    assert credit_prices.reservation(TOKEN_PRICE, messages=messages, max_tokens=10, n=3) == 2 * 3 + prompt + 10 * 3
    assert credit_prices.charge(TOKEN_PRICE, total_tokens=7, reserved=1000, n=3) == 2 * 3 + 7


def test_an_image_is_held_at_the_models_image_tokens_and_charged_at_the_providers_count_within_the_hold() -> None:
    image = ImageInput(url="https://example.com/a.png")
    with_images = [ChatMessage(role="user", images=[image, image])]
    without = [ChatMessage(role="user", content="x")]
    held = credit_prices.reservation(TOKEN_PRICE, messages=with_images, max_tokens=10)
    assert held - credit_prices.reservation(TOKEN_PRICE, messages=without, max_tokens=10) == 2 * 85 - 1
    assert credit_prices.charge(TOKEN_PRICE, total_tokens=10_000, reserved=held) == held  # never above the hold


def test_tool_calls_results_and_definitions_count_towards_the_hold() -> None:
    call = ToolCall(id="call_1", name="f", arguments='{"city":"Oslo"}')
    turn = [
        ChatMessage(role="assistant", tool_calls=[call]),
        ChatMessage(role="tool", content="21", tool_call_id="call_1"),
    ]
    bound = credit_prices.prompt_tokens_bound(turn)
    assert bound >= len("call_1") + len("f") + len('{"city":"Oslo"}') + len("21") + len("call_1")
    definitions = credit_prices.definition_tokens({"name": "f", "parameters": {"type": "object"}}, None)
    assert definitions == len('{"name": "f", "parameters": {"type": "object"}}') + FRAMING_TOKENS
    assert credit_prices.reservation(TOKEN_PRICE, messages=turn, max_tokens=10, definitions=definitions) == (
        2 + bound + definitions + 10
    )
