"""A conversation thread's rules, without IO: its title, how its messages are paged, and the
turn a threaded answer adds.

Storage (`thread_store.py`): a `threads` document per thread (owner, title, system prompt,
times, counters: turns, messages, tokens, credits, cost) and its messages in pages, each
page a document `<thread id>:<n>` holding whole turns. A turn is the new messages of one
request plus the answer. Turns go to the thread's current page until it holds PAGE_TURNS
turns or PAGE_CHARS characters, then to the next page. So a request writes one page and one
thread document whatever the thread's length, a page never grows past a bound, and the
context is read by key from the newest page back, only as far as the window reaches."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from common.contracts import ChatMessage
from common.contracts.threads import MAX_TITLE_CHARS

PAGE_TURNS = 16
PAGE_CHARS = 64_000
TITLE_CHARS = 60

_SPACE = re.compile(r"\s+")


def page_id(thread_id: str, n: int) -> str:
    return f"{thread_id}:{n}"


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


def page_chars(turns: Sequence[dict[str, Any]]) -> int:
    return sum(len(m["content"]) for t in turns for m in t["messages"])


def next_page(current: int, turns: Sequence[dict[str, Any]]) -> int:
    """The page a new turn goes to, given the current page's turns as read."""
    full = len(turns) >= PAGE_TURNS or page_chars(turns) >= PAGE_CHARS
    return current + 1 if full else current


@dataclass(frozen=True, slots=True)
class TurnWrite:
    """One turn to keep: its page, the thread counters it adds, and the title it may set."""

    thread_id: str
    owner_id: str
    page: int
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

    def turn_document(self) -> dict[str, Any]:
        return {
            "id": str(self.turn_id),
            "at": self.at,
            "messages": [{"role": m.role, "content": m.content} for m in self.messages],
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
            "$max": {"page": self.page, "updatedAt": self.at},
        }
        if self.title is not None:
            update["$set"] = {"autoTitle": self.title}
        return update
