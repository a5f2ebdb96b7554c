from __future__ import annotations

import pytest

from chat.providers import ProviderAnswer
from chat.streaming import Pumped, delivered_usage, produced_usage
from common.contracts import ChatMessage

pytestmark = pytest.mark.unit

PROMPT = (ChatMessage(role="user", content="four words of prompt"),)
ANSWER = ProviderAnswer(text="aa bb cc dd", model="m", prompt_tokens=5, completion_tokens=8)


def test_all_delivered_is_charged_as_the_provider_counted() -> None:
    out = Pumped(sent=["aa ", "bb ", "cc ", "dd"], delivered=4, answer=ANSWER)
    usage = delivered_usage(out, PROMPT)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (5, 8, 13)


def test_part_delivered_is_charged_for_its_share_rounded_up() -> None:
    out = Pumped(sent=["aa ", "bb ", "cc ", "dd"], delivered=1, answer=ANSWER)
    assert delivered_usage(out, PROMPT).completion_tokens == 3  # 3 of 11 characters of 8 tokens, rounded up
    assert produced_usage(out, PROMPT).completion_tokens == 8  # what the provider bills is all of it


def test_a_stream_cut_before_its_end_is_counted_in_words() -> None:
    out = Pumped(sent=["aa ", "bb ", "cc "], delivered=2, finish="cancelled")
    usage = delivered_usage(out, PROMPT)
    assert (usage.prompt_tokens, usage.completion_tokens) == (4, 2)
    assert produced_usage(out, PROMPT).completion_tokens == 3
    assert out.delivered_text == "aa bb " and not out.complete
