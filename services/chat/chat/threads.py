"""A conversation thread's rules, without IO: its title, how its turns are keyed, and the turn
a threaded answer adds.

Storage (`thread_store.py`): a `threads` document per thread (owner, title, system prompt,
times, counters: turns, messages, tokens, credits, cost, and `last`, the number of its newest
turn) and a `thread_turns` document per turn, keyed `<thread id>:<n>`. A turn is the new
messages of one request plus the answer; it is written once and never changed. So a request
inserts one small document and updates its thread's counters whatever the thread's length,
nothing grows, and the context is read by key from the newest turn back, only as far as the
window reaches (and, turns being immutable, mostly from the chat replica's memory)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chat.thread_documents import TurnDoc
from common.contracts import ChatMessage
from common.contracts.chat import ChatRole, MessageRole
from common.contracts.threads import MAX_TITLE_CHARS

TITLE_CHARS = 60

_SPACE = re.compile(r"\s+")


def turn_key(thread_id: str, seq: int) -> str:
    return f"{thread_id}:{seq}"


def text_role(role: MessageRole) -> ChatRole:
    """A kept message's role: a thread keeps text turns only (a threaded request with tool
    messages is refused before it is answered), so a tool message here is a bug."""
    if role == "tool":
        raise ValueError("a thread keeps no tool messages")
    return role


def title_from(messages: Sequence[ChatMessage]) -> str | None:
    """A title from a thread's first words: its first user message, on one line, cut at a word."""
    first = next((m.content for m in messages if m.role == "user"), None)
    if first is None:
        return None
    text = _SPACE.sub(" ", first).strip()
    if len(text) <= TITLE_CHARS:
        return text or None
    cut = text[:TITLE_CHARS].rsplit(" ", 1)[0] or text[:TITLE_CHARS]
    return (cut.rstrip(" ,.;:") + "…")[:MAX_TITLE_CHARS]


@dataclass(frozen=True, slots=True)
class StoredTurn:
    """A turn as read back: immutable once written."""

    seq: int
    turn_id: str
    at: datetime
    messages: tuple[ChatMessage, ...]

    @classmethod
    def of(cls, doc: TurnDoc) -> StoredTurn:
        messages = tuple(ChatMessage(role=m["role"], content=m["content"]) for m in doc["messages"])
        return cls(seq=doc["seq"], turn_id=doc["turnId"], at=doc["at"], messages=messages)


@dataclass(frozen=True, slots=True)
class TurnWrite:
    """One turn to keep: its number in the thread, the counters it adds, and the title it may set."""

    thread_id: str
    owner_id: str
    seq: int
    turn_id: uuid.UUID
    at: datetime
    messages: tuple[ChatMessage, ...]
    model: str
    provider: str
    prompt_tokens: int
    completion_tokens: int
    credits: int
    cost_usd: float
    title: str | None = None  # set as the thread's automatic title (its first turn only)

    @property
    def key(self) -> str:
        return turn_key(self.thread_id, self.seq)

    def document(self) -> TurnDoc:
        return {
            "_id": self.key,
            "threadId": self.thread_id,
            "ownerId": self.owner_id,
            "seq": self.seq,
            "turnId": str(self.turn_id),
            "at": self.at,
            "messages": [{"role": text_role(m.role), "content": m.content} for m in self.messages],
            "model": self.model,
            "provider": self.provider,
            "promptTokens": self.prompt_tokens,
            "completionTokens": self.completion_tokens,
            "credits": self.credits,
        }

    def thread_update(self) -> dict[str, Any]:
        update: dict[str, Any] = {
            "$inc": {
                "turns": 1,
                "messages": len(self.messages),
                "promptTokens": self.prompt_tokens,
                "completionTokens": self.completion_tokens,
                "credits": self.credits,
                "costUsd": self.cost_usd,
            },
            "$max": {"last": self.seq, "updatedAt": self.at},
        }
        if self.title is not None:
            update["$set"] = {"autoTitle": self.title}
        return update

    def stored(self) -> StoredTurn:
        return StoredTurn(seq=self.seq, turn_id=str(self.turn_id), at=self.at, messages=self.messages)
