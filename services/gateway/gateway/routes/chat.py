from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.sse import format_sse_event
from pydantic import BaseModel, ConfigDict, Field

from common.contracts import ChatChunk, ChatCompletion, CompleteChat
from common.contracts.chatfeatures import ResponseFormat, ToolChoice
from common.errors import PlatformError
from gateway.chat_limits import (
    Choices,
    EndUser,
    MaxTokens,
    Messages,
    ModelName,
    Penalty,
    Seed,
    Stops,
    Temperature,
    Tools,
    TopP,
    check_tool_choice,
)
from gateway.chat_relay import ChatRelay, write_events
from gateway.deps import Rpc, Settings, UserCaller
from gateway.http.json_body import ParsedBodyRoute
from gateway.http.responses import PROBLEM_REF, SPENDING, event_stream
from gateway.http.sse import EventStream

router = APIRouter(tags=["chat"], route_class=ParsedBodyRoute)

STREAM_DOC = (
    'With `"stream": true` the answer comes as `text/event-stream`: an `event: chunk` per piece of text '
    "(`data`: `{index, delta, provider, model, cached}`), then `event: done` with the whole ChatCompletion "
    "(usage and credits charged for what was delivered), or `event: error` with a problem document. "
    "Errors before the first piece are ordinary problem+json responses."
)
THREAD_DOC = (
    "Continue this thread of yours (see /v1/threads): `messages` are then the new turn only; the provider gets the "
    "thread's system prompt, as many of its latest turns as fit the model's window, and the new messages, which are "
    "kept with the answer. System messages in `messages` stand in for the thread's system prompt for this request."
)


CHUNK = {
    "type": "object",
    "required": ["index", "delta", "provider", "model", "cached"],
    "properties": {
        "index": {"type": "integer", "minimum": 0},
        "delta": {"type": "string"},
        "provider": {"type": "string"},
        "model": {"type": "string"},
        "cached": {"type": "boolean"},
    },
}
EVENT_DATA = {"anyOf": [CHUNK, {"$ref": "#/components/schemas/ChatCompletion"}, {"$ref": PROBLEM_REF}]}


# CompleteChat's fields a client sets, with the contract's limits (see `chat_limits.py`).
class ChatBody(BaseModel):
    """Body of POST /v1/chat."""

    model_config = ConfigDict(extra="forbid")

    messages: Messages = Field(description="The conversation so far, oldest first.")
    model: ModelName | None = Field(None, description="Model to use; the service default when absent.")
    temperature: Temperature | None = Field(None, description="Sampling temperature.")
    top_p: TopP | None = Field(None, description="Nucleus sampling mass.")
    max_tokens: MaxTokens | None = Field(
        None, description="Most tokens the answer may have; at most the model's priced cap."
    )
    stream: bool = Field(False, description="Send the answer as server-sent events as it is produced.")
    thread_id: uuid.UUID | None = Field(None, description=THREAD_DOC)
    tools: Tools = Field(
        default_factory=list,
        description="Functions the model may call: the calls it makes come in the answer's `message.tool_calls` "
        "(`finish_reason` `tool_calls`), and their results go back as `tool` messages naming the call's id.",
    )
    tool_choice: ToolChoice | None = Field(
        None, description="Whether or which tool to call; a named function must be one of `tools` (404 otherwise)."
    )
    response_format: ResponseFormat | None = Field(
        None, description="`json_object`, or `json_schema` with its `json_schema`: the answer is JSON text."
    )
    n: Choices = Field(1, description="Alternative answers to produce (the answer's `choices`); each is charged.")
    stop: Stops = Field(default_factory=list, description="Text at which the answer stops (not included).")
    seed: Seed | None = Field(None, description="Sampling seed, for repeatable answers.")
    presence_penalty: Penalty | None = Field(None, description="Penalty for tokens already present.")
    frequency_penalty: Penalty | None = Field(None, description="Penalty by how often a token appeared.")
    end_user: EndUser | None = Field(None, description="Your label for your own end user (OpenAI's `user`).")


CacheControl = Annotated[
    str | None,
    Header(description="`no-cache`: do not answer from the prompt cache (the fresh answer is still stored)."),
]


def wants_fresh(cache_control: str | None) -> bool:
    return cache_control is not None and "no-cache" in cache_control.lower()


@router.post(
    "/v1/chat",
    response_model=ChatCompletion,
    summary="Answer a conversation",
    description=STREAM_DOC,
    responses={
        200: {"content": event_stream(STREAM_DOC, events=["chunk", "done", "error"], data=EVENT_DATA)},
        **SPENDING,
    },
)
async def chat(
    body: ChatBody, caller: UserCaller, rpc: Rpc, settings: Settings, cache_control: CacheControl = None
) -> Any:
    check_tool_choice(body.tool_choice, body.tools)
    # Every field of the body is the contract's own (test_chat_limits holds them to it).
    command = CompleteChat(**dict(body), use_cache=not wants_fresh(cache_control))
    if not body.stream:
        return await rpc.call(caller.envelope(command), reply_model=ChatCompletion)
    relay = await ChatRelay.open(rpc, caller.envelope(command))
    events = NativeEvents(caller.request_id)
    return EventStream(lambda emit: write_events(relay, emit, events), write_timeout_s=settings.stream_write_timeout_s)


class NativeEvents:
    """/v1/chat's events: `chunk`, then `done` (the ChatCompletion) or `error` (a problem document)."""

    def __init__(self, request_id: str) -> None:
        self._request_id = request_id

    def chunk(self, chunk: ChatChunk) -> bytes:
        return format_sse_event(data_str=chunk.model_dump_json(exclude={"last", "finish_reason"}), event="chunk")

    def done(self, completion: ChatCompletion, *, streamed_any: bool) -> bytes:
        return format_sse_event(data_str=completion.model_dump_json(), event="done")

    def error(self, error: PlatformError) -> bytes:
        return format_sse_event(
            data_str=json.dumps(error.to_problem(request_id=self._request_id, instance="/v1/chat")), event="error"
        )
