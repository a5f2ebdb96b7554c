"""Broker entry points of conversation threads: create, list, read, update, delete. Each acts
on the acting user's own threads only; another user's thread answers as an unknown one (404)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chat.thread_book import ThreadBook
from chat.thread_store import info_of
from common.contracts import (
    CreateThread,
    DeleteThread,
    Envelope,
    GetThread,
    ListThreads,
    ThreadDeleted,
    ThreadInfo,
    ThreadMessages,
    ThreadPage,
    UpdateThread,
)
from common.errors import Unauthenticated


def _owner(envelope: Envelope[Any]) -> str:
    if envelope.actor is None:
        raise Unauthenticated("a thread belongs to a user; this message names none")
    return envelope.actor.id


class ThreadHandlers:
    def __init__(self, book: ThreadBook) -> None:
        self._book = book

    async def create(self, envelope: Envelope[CreateThread]) -> ThreadInfo:
        p = envelope.payload
        doc = await self._book.create(
            thread_id=p.thread_id, owner_id=_owner(envelope), title=p.title, system=p.system, now=datetime.now(UTC)
        )
        return info_of(doc)

    async def list(self, envelope: Envelope[ListThreads]) -> ThreadPage:
        p = envelope.payload
        docs, cursor = await self._book.list(owner_id=_owner(envelope), limit=p.limit, before=p.before)
        return ThreadPage(threads=[info_of(d) for d in docs], next_cursor=cursor)

    async def get(self, envelope: Envelope[GetThread]) -> ThreadMessages:
        p = envelope.payload
        thread = await self._book.get(p.thread_id, owner_id=_owner(envelope))
        messages, cursor = await self._book.messages(thread, limit=p.limit, before=p.before)
        return ThreadMessages(thread=info_of(thread), messages=messages, next_cursor=cursor)

    async def update(self, envelope: Envelope[UpdateThread]) -> ThreadInfo:
        p = envelope.payload
        doc = await self._book.update(
            p.thread_id, owner_id=_owner(envelope), title=p.title, system=p.system, now=datetime.now(UTC)
        )
        return info_of(doc)

    async def delete(self, envelope: Envelope[DeleteThread]) -> ThreadDeleted:
        await self._book.delete(envelope.payload.thread_id, owner_id=_owner(envelope))
        return ThreadDeleted(thread_id=envelope.payload.thread_id)

    def routes(self) -> dict[str, Any]:
        routes: dict[str, Any] = {
            "CreateThread": self.create,
            "ListThreads": self.list,
            "GetThread": self.get,
            "UpdateThread": self.update,
            "DeleteThread": self.delete,
        }
        return routes
