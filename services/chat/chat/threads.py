"""A conversation thread's rules, without IO: its title, how its turns are keyed, and the turn
a threaded answer adds.

Storage (`thread_store.py`): a `threads` document per thread (owner, title, system prompt,
times, counters: turns, messages, tokens, credits, cost, and `last`, the number of the newest
turn they count) and a `thread_turns` document per turn, keyed `<thread id>:<n>`. A turn is the
new messages of one request plus the answer, with what it added to the counters; it is written
once and never changed. The counters of a thread are its document's plus those of its turns
numbered after `last` (`count`): the thread's owner (`thread_book.py`) keeps them in memory and
writes them to the document now and then, so a request inserts one small document whatever the
thread's length, nothing grows, and the context is read by key from the newest turn back, only
as far as the window reaches (and, turns being immutable, mostly from memory)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chat.context import message_tokens
from chat.thread_documents import ThreadDoc, TurnDoc
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


def count(thread: ThreadDoc, turn: TurnDoc) -> None:
    """Add `turn` to `thread`'s counters (in place): a turn numbered after the thread's `last`."""
    thread["turns"] += 1
    thread["messages"] += len(turn["messages"])
    thread["promptTokens"] += turn["promptTokens"]
    thread["completionTokens"] += turn["completionTokens"]
    thread["credits"] += turn["credits"]
    thread["costUsd"] += turn.get("costUsd", 0.0)
    thread["last"] = max(thread["last"], turn["seq"])
    thread["updatedAt"] = max(thread["updatedAt"], turn["at"])
    if not thread.get("autoTitle") and (title := turn.get("title")):
        thread["autoTitle"] = title


def counters(thread: ThreadDoc) -> dict[str, Any]:
    """What a checkpoint writes of a thread: its counters, as of its turn `last`."""
    return {
        "turns": thread["turns"],
        "messages": thread["messages"],
        "promptTokens": thread["promptTokens"],
        "completionTokens": thread["completionTokens"],
        "credits": thread["credits"],
        "costUsd": thread["costUsd"],
        "last": thread["last"],
        "autoTitle": thread.get("autoTitle"),
    }


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
    tokens: int = field(init=False)  # its messages' `message_tokens`: what it takes of a context window

    def __post_init__(self) -> None:
        object.__setattr__(self, "tokens", sum(message_tokens(m) for m in self.messages))

    @classmethod
    def of(cls, doc: TurnDoc) -> StoredTurn:
        messages = tuple(ChatMessage(role=m["role"], content=m["content"]) for m in doc["messages"])
        return cls(seq=doc["seq"], turn_id=doc["turnId"], at=doc["at"], messages=messages)


@dataclass(frozen=True, slots=True)
class TurnWrite:
    """One turn to keep: the counters it adds, and the title it may set; its number in the thread
    is given when it is kept (`seq`)."""

    thread_id: str
    owner_id: str
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
    seq: int = -1  # its number in the thread, given by the thread's owner when it is kept

    @property
    def key(self) -> str:
        return turn_key(self.thread_id, self.seq)

    def document(self) -> TurnDoc:
        doc: TurnDoc = {
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
            "costUsd": self.cost_usd,
        }
        if self.title is not None:
            doc["title"] = self.title
        return doc

    def stored(self) -> StoredTurn:
        return StoredTurn(seq=self.seq, turn_id=str(self.turn_id), at=self.at, messages=self.messages)
