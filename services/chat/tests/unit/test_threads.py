"""A thread's pure rules: its automatic title and its turns' documents (chat/threads.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from chat.thread_documents import ThreadDoc
from chat.threads import StoredTurn, TurnWrite, count, counters, title_from
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
    assert (doc["costUsd"], doc["title"]) == (0.5, "q")


def test_a_thread_counts_a_turn_once_with_its_messages_tokens_credits_cost_number_and_title() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    thread: ThreadDoc = {
        "_id": "t",
        "ownerId": "u",
        "title": None,
        "autoTitle": None,
        "system": None,
        "last": 6,
        "turns": 7,
        "messages": 14,
        "promptTokens": 0,
        "completionTokens": 0,
        "credits": 10,
        "costUsd": 1.0,
        "createdAt": at,
        "updatedAt": at,
    }
    turn = TurnWrite(
        thread_id="t",
        owner_id="u",
        seq=7,
        turn_id=uuid.uuid4(),
        at=datetime(2026, 1, 2, tzinfo=UTC),
        messages=(ChatMessage(role="user", content="q"), ChatMessage(role="assistant", content="a")),
        model="m",
        provider="p",
        prompt_tokens=3,
        completion_tokens=4,
        credits=2,
        cost_usd=0.5,
        title="q",
    )
    count(thread, turn.document())
    assert (thread["turns"], thread["messages"], thread["credits"], thread["costUsd"]) == (8, 16, 12, 1.5)
    assert (thread["promptTokens"], thread["completionTokens"], thread["last"]) == (3, 4, 7)
    assert (thread["updatedAt"], thread["autoTitle"]) == (turn.at, "q")
    assert counters(thread)["last"] == 7 and counters(thread)["autoTitle"] == "q"
    older = turn.document()
    older.pop("costUsd")  # written before turns carried their cost
    older["title"] = "not the first"
    count(thread, older)
    assert (thread["turns"], thread["costUsd"], thread["autoTitle"]) == (9, 1.5, "q")
