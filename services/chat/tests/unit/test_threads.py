"""A thread's pure rules: its automatic title and its turns' documents (chat/threads.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from chat.threads import StoredTurn, TurnWrite, title_from
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


def test_a_turn_is_one_document_keyed_by_its_thread_and_number_and_reads_back_the_same() -> None:
    turn = TurnWrite(
        thread_id="t",
        owner_id="u",
        seq=7,
        turn_id=uuid.uuid4(),
        at=datetime(2026, 1, 1, tzinfo=UTC),
        messages=(ChatMessage(role="user", content="q"), ChatMessage(role="assistant", content="a")),
        model="m",
        provider="p",
        prompt_tokens=3,
        completion_tokens=4,
        credits=2,
        cost_usd=0.5,
        title="q",
    )
    doc = turn.document()
    assert (doc["_id"], doc["threadId"], doc["seq"]) == ("t:7", "t", 7)
    assert StoredTurn.of(doc) == turn.stored()
    update = turn.thread_update()
    assert update["$inc"]["turns"] == 1 and update["$inc"]["messages"] == 2 and update["$inc"]["credits"] == 2
    assert update["$max"] == {"last": 7, "updatedAt": turn.at} and update["$set"] == {"autoTitle": "q"}
