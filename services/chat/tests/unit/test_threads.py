"""A thread's pure rules: its automatic title and its pages (chat/threads.py)."""

from __future__ import annotations

import pytest

from chat.threads import PAGE_CHARS, PAGE_TURNS, next_page, title_from
from common.contracts import ChatMessage

pytestmark = pytest.mark.unit


def test_the_title_is_the_first_user_message_on_one_line_cut_at_a_word() -> None:
    assert title_from([ChatMessage(role="system", content="x"), ChatMessage(role="user", content=" Hi\n there ")]) == (
        "Hi there"
    )
    long = "Please explain how a write-ahead log keeps a ledger durable across crashes and restarts"
    title = title_from([ChatMessage(role="user", content=long)])
    assert title is not None and title.endswith("…") and len(title) <= 61 and long.startswith(title[:-1])
    assert title_from([ChatMessage(role="assistant", content="hello")]) is None


def test_a_page_takes_turns_until_it_holds_enough_turns_or_text() -> None:
    small = {"messages": [{"role": "user", "content": "hi"}]}
    assert next_page(3, []) == 3
    assert next_page(3, [small] * (PAGE_TURNS - 1)) == 3
    assert next_page(3, [small] * PAGE_TURNS) == 4
    assert next_page(0, [{"messages": [{"role": "user", "content": "x" * PAGE_CHARS}]}]) == 1
