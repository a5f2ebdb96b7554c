"""Conversation messages: a user's kept chat threads, owned by the chat service.

A thread is its owner's alone: every command names the acting user's thread, and another
user's thread id is answered exactly like an unknown one (404). The gateway publishes these
for verified users; a threaded `CompleteChat` (its `thread_id`) continues one."""

from __future__ import annotations

import uuid

from pydantic import AwareDatetime, Field, model_validator

from common.contracts.chat import MAX_CONTENT_CHARS, ChatRole
from common.contracts.envelope import Contract

MAX_TITLE_CHARS = 200


# Cursors a pattern can state (so the API document says what is accepted): a thread list's is
# `<created epoch-ms>.<thread id>`, a thread's messages' the number of the oldest turn returned.
THREAD_CURSOR_PATTERN = r"^[0-9]{1,15}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
TURN_CURSOR_PATTERN = r"^[0-9]{1,9}$"


class ThreadInfo(Contract):
    """A thread without its messages: what it is called, how long it is and what it has cost."""

    thread_id: uuid.UUID
    title: str | None = Field(description="The owner's title, else one made from the first message; none before it.")
    system: str | None = Field(None, description="System prompt sent first with every turn (never trimmed).")
    turns: int = Field(ge=0, description="Turns kept: each is the new messages of one request and its answer.")
    messages: int = Field(ge=0, description="Messages kept.")
    prompt_tokens: int = Field(ge=0, description="Prompt tokens of every answer in the thread (context included).")
    completion_tokens: int = Field(ge=0, description="Answer tokens of every answer in the thread.")
    credits: int = Field(ge=0, description="Credits charged for the thread's answers.")
    cost_usd: float = Field(ge=0, description="Estimated provider cost of the thread's answers.")
    created_at: AwareDatetime
    updated_at: AwareDatetime


class ThreadMessage(Contract):
    role: ChatRole
    content: str
    turn_id: uuid.UUID = Field(description="The turn (request) that added it.")
    at: AwareDatetime = Field(description="When its turn was kept.")


class CreateThread(Contract):
    """Command: start a thread for the acting user. Repeating a thread id returns that thread."""

    thread_id: uuid.UUID = Field(description="Chosen by the caller; deterministic for an Idempotency-Key.")
    title: str | None = Field(None, min_length=1, max_length=MAX_TITLE_CHARS)
    system: str | None = Field(None, min_length=1, max_length=MAX_CONTENT_CHARS, description="System prompt.")


class ListThreads(Contract):
    """Query: the acting user's threads, newest first."""

    limit: int = Field(20, ge=1, le=100)
    before: str | None = Field(None, pattern=THREAD_CURSOR_PATTERN, description="Cursor from the previous page.")


class ThreadPage(Contract):
    threads: list[ThreadInfo]
    next_cursor: str | None = None


class GetThread(Contract):
    """Query: one of the acting user's threads and its latest messages (older ones by cursor)."""

    thread_id: uuid.UUID
    limit: int = Field(100, ge=1, le=500, description="Messages wanted; whole turns are returned.")
    before: str | None = Field(
        None, pattern=TURN_CURSOR_PATTERN, description="Cursor from the previous page (older messages)."
    )


class ThreadMessages(Contract):
    """Reply to GetThread: messages oldest first; `next_cursor` reaches older ones."""

    thread: ThreadInfo
    messages: list[ThreadMessage]
    next_cursor: str | None = None


class UpdateThread(Contract):
    """Command: rename one of the acting user's threads, or change its system prompt."""

    thread_id: uuid.UUID
    title: str | None = Field(None, min_length=1, max_length=MAX_TITLE_CHARS)
    system: str | None = Field(None, min_length=1, max_length=MAX_CONTENT_CHARS)

    @model_validator(mode="after")
    def _something(self) -> UpdateThread:
        if self.title is None and self.system is None:
            raise ValueError("name a title or a system prompt to change")
        return self


class DeleteThread(Contract):
    """Command: delete one of the acting user's threads and all its messages."""

    thread_id: uuid.UUID


class ThreadDeleted(Contract):
    thread_id: uuid.UUID
