"""The stored shapes of threads and turns (chat/thread_documents.py) match what is written."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import pytest

from chat.thread_documents import TurnDoc
from chat.threads import StoredTurn, TurnWrite
from common.contracts import ChatMessage

pytestmark = pytest.mark.unit


def test_a_turn_document_has_exactly_the_fields_its_type_names() -> None:
    turn = TurnWrite(
        thread_id="t",
        owner_id="u",
        seq=0,
        turn_id=uuid.uuid4(),
        at=datetime(2026, 1, 1, tzinfo=UTC),
        messages=(ChatMessage(role="user", content="q"),),
        model="m",
        provider="p",
        prompt_tokens=1,
        completion_tokens=1,
        credits=1,
        cost_usd=0.1,
    )
    doc = turn.document()
    assert set(doc) == set(TurnDoc.__annotations__) - {"title"}  # `title`: on a thread's first turn only
    assert {**turn.document(), "title": "q"}.keys() == dataclasses.replace(turn, title="q").document().keys()
    assert StoredTurn.of(doc) == turn.stored()
