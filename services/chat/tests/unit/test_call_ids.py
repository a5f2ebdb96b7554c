"""Tool call ids that carry a provider's thought signature (chat/providers/call_ids.py), and
what each provider is sent of them."""

from __future__ import annotations

import pytest

from chat.providers import call_ids
from chat.providers.base import ProviderRequest
from chat.providers.gemini import _contents
from chat.providers.openai import _params
from common.contracts import ChatMessage
from common.contracts.chatfeatures import ToolCall

pytestmark = pytest.mark.unit

SIGNATURE = bytes(range(256))  # every byte value, the base64 alphabets' awkward ones among them


def test_a_signature_travels_in_the_id_and_comes_back_byte_for_byte() -> None:
    carried = call_ids.signed("call_1", SIGNATURE)
    assert carried.startswith("call_1" + call_ids.MARK)
    assert call_ids.split(carried) == ("call_1", SIGNATURE)
    assert call_ids.plain(carried) == "call_1"


def test_an_id_without_a_signature_or_with_one_that_does_not_decode_is_the_plain_id() -> None:
    assert call_ids.signed("call_1", None) == "call_1"
    assert call_ids.split("call_1") == ("call_1", None)
    assert call_ids.split("call_1" + call_ids.MARK + "not base64!") == ("call_1", None)


def conversation() -> ProviderRequest:
    carried = call_ids.signed("call_1", SIGNATURE)
    return ProviderRequest(
        model="m",
        messages=(
            ChatMessage(role="user", content="Weather in Oslo?"),
            ChatMessage(role="assistant", tool_calls=[ToolCall(id=carried, name="get_weather", arguments="{}")]),
            ChatMessage(role="tool", tool_call_id=carried, content='{"temp_c": 21}'),
        ),
    )


def test_gemini_is_sent_the_signature_with_its_call_and_the_plain_id() -> None:
    model, answered = _contents(conversation())[1:]
    assert model.parts is not None and model.parts[0].thought_signature == SIGNATURE
    assert model.parts[0].function_call is not None and model.parts[0].function_call.id == "call_1"
    assert answered.parts is not None and answered.parts[0].function_response is not None
    assert (answered.parts[0].function_response.id, answered.parts[0].function_response.name) == (
        "call_1",
        "get_weather",
    )


def test_openai_is_sent_the_plain_id_in_the_call_and_in_its_answer() -> None:
    assistant, tool = _params(conversation())["messages"][1:]
    assert assistant["tool_calls"][0]["id"] == "call_1" and tool["tool_call_id"] == "call_1"
