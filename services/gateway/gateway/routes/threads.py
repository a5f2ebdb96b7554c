"""Conversations over HTTP: a user's kept chat threads, under /v1/threads.

The chat service owns the threads; these routes only publish its typed commands for the
verified user. A user reaches only their own threads: another user's thread id answers
exactly like an unknown one (404). `POST /v1/chat` (and `/v1/chat/completions`, as an extra
body field) continues a thread with `thread_id`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.contracts import (
    CreateThread,
    DeleteThread,
    GetThread,
    ListThreads,
    ThreadDeleted,
    ThreadInfo,
    ThreadMessages,
    ThreadPage,
    UpdateThread,
)
from common.contracts.chat import MAX_CONTENT_CHARS
from common.contracts.threads import MAX_TITLE_CHARS, THREAD_CURSOR_PATTERN, TURN_CURSOR_PATTERN
from gateway.deps import Rpc, UserCaller
from gateway.http.json_body import ParsedBodyRoute
from gateway.http.params import ThreadId
from gateway.http.responses import BODY, CALLER, LOCATION, NOT_FOUND

router = APIRouter(tags=["threads"], route_class=ParsedBodyRoute)

ThreadCursor = Annotated[
    str | None, Query(pattern=THREAD_CURSOR_PATTERN, description="next_cursor of the previous page")
]
TurnCursor = Annotated[str | None, Query(pattern=TURN_CURSOR_PATTERN, description="next_cursor of the previous page")]


class ThreadBody(BaseModel):
    """Body of POST /v1/threads."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(
        None, min_length=1, max_length=MAX_TITLE_CHARS, description="Title; else made from the first message."
    )
    system: str | None = Field(
        None, min_length=1, max_length=MAX_CONTENT_CHARS, description="System prompt sent first with every turn."
    )


class ThreadPatch(BaseModel):
    """Body of PATCH /v1/threads/{id}: what to change (at least one of the two)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"anyOf": [{"required": ["title"]}, {"required": ["system"]}]}
    )

    # May be absent, never null: typed str (the schema and validation refuse null), None marks "unchanged".
    title: str = Field(None, min_length=1, max_length=MAX_TITLE_CHARS, description="New title.")  # type: ignore[assignment]
    system: str = Field(  # type: ignore[assignment]  # as title
        None, min_length=1, max_length=MAX_CONTENT_CHARS, description="New system prompt, sent first with every turn."
    )

    @model_validator(mode="after")
    def _something(self) -> ThreadPatch:
        if self.title is None and self.system is None:
            raise ValueError("name a title or a system prompt to change")
        return self


@router.post(
    "/v1/threads",
    status_code=201,
    response_model=ThreadInfo,
    summary="Start a conversation thread",
    responses={201: {"headers": {"Location": LOCATION}}, **BODY},
)
async def create_thread(body: ThreadBody, response: Response, caller: UserCaller, rpc: Rpc) -> ThreadInfo:
    command = CreateThread(thread_id=uuid.uuid4(), title=body.title, system=body.system)
    thread = await rpc.call(caller.envelope(command), reply_model=ThreadInfo)
    response.headers["Location"] = f"/v1/threads/{thread.thread_id}"
    return thread


@router.get("/v1/threads", response_model=ThreadPage, summary="Your threads, newest first", responses=CALLER)
async def list_threads(
    caller: UserCaller, rpc: Rpc, limit: Annotated[int, Query(ge=1, le=100)] = 20, cursor: ThreadCursor = None
) -> ThreadPage:
    return await rpc.call(caller.envelope(ListThreads(limit=limit, before=cursor)), reply_model=ThreadPage)


@router.get(
    "/v1/threads/{thread_id:uuid}",
    response_model=ThreadMessages,
    summary="One of your threads with its latest messages (older ones by cursor)",
    responses=CALLER | NOT_FOUND,
)
async def get_thread(
    thread_id: ThreadId,
    caller: UserCaller,
    rpc: Rpc,
    limit: Annotated[int, Query(ge=1, le=500, description="Messages wanted; whole turns are returned.")] = 100,
    cursor: TurnCursor = None,
) -> ThreadMessages:
    query = GetThread(thread_id=thread_id, limit=limit, before=cursor)
    return await rpc.call(caller.envelope(query), reply_model=ThreadMessages)


@router.patch(
    "/v1/threads/{thread_id:uuid}",
    response_model=ThreadInfo,
    summary="Rename a thread or change its system prompt",
    responses=BODY | NOT_FOUND,
)
async def update_thread(thread_id: ThreadId, body: ThreadPatch, caller: UserCaller, rpc: Rpc) -> ThreadInfo:
    command = UpdateThread(thread_id=thread_id, title=body.title, system=body.system)
    return await rpc.call(caller.envelope(command), reply_model=ThreadInfo)


@router.delete(
    "/v1/threads/{thread_id:uuid}",
    status_code=204,
    summary="Delete a thread and its messages",
    responses=CALLER | NOT_FOUND,
)
async def delete_thread(thread_id: ThreadId, caller: UserCaller, rpc: Rpc) -> Response:
    await rpc.call(caller.envelope(DeleteThread(thread_id=thread_id)), reply_model=ThreadDeleted)
    return Response(status_code=204)
