"""An OpenAI-compatible surface, so the official `openai` SDK and other OpenAI clients work
against the gateway unchanged, with a user's bearer token as their API key:
`POST /v1/chat/completions` (plain and `stream: true`) and `GET /v1/models[/{id}]`.

Errors on these routes use OpenAI's shape (see `errors.py`). Answers add `provider`, `cached` and `credits` to
OpenAI's fields; clients ignore what they do not know."""

from __future__ import annotations

import json
import time
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from fastapi.sse import format_sse_event
from pydantic import BaseModel, ConfigDict, Field

from common.contracts import ChatChunk, ChatCompletion, ChatMessage, CompleteChat, FinishReason, ListModels, ModelList
from common.contracts.chat import MAX_CONTENT_CHARS
from common.errors import NotFound, PlatformError
from gateway.chat_limits import MaxTokens, ModelName, Temperature, TopP, limits
from gateway.chat_relay import ChatRelay, write_events
from gateway.deps import Rpc, Settings, UserCaller
from gateway.http.responses import OPENAI, OPENAI_NOT_FOUND, OPENAI_SPENDING, event_stream
from gateway.http.sse import EventStream
from gateway.openai.errors import OpenAIRoute, error_body
from gateway.openai.views import STREAM, ChatCompletionView, ModelListView, ModelView
from gateway.routes.chat import THREAD_DOC, CacheControl, wants_fresh

_FINISH: dict[FinishReason, str] = {"length": "length", "content_filter": "content_filter"}


router = APIRouter(tags=["openai-compatible"], route_class=OpenAIRoute)


# A message's text, joined from its parts with newlines, must fit one ChatMessage.
MAX_PARTS = 8
PART_CHARS = (MAX_CONTENT_CHARS - (MAX_PARTS - 1)) // MAX_PARTS
TextContent = Annotated[str, Field(min_length=1, max_length=MAX_CONTENT_CHARS)]


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    text: str = Field(min_length=1, max_length=PART_CHARS)


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant"]
    content: TextContent | Annotated[list[TextPart], Field(min_length=1, max_length=MAX_PARTS)] = Field(
        description="Text, or text parts (other part types are not supported)."
    )
    name: str | None = Field(None, max_length=64, description="Accepted and ignored.")

    def to_chat(self) -> ChatMessage:
        text = self.content if isinstance(self.content, str) else "\n".join(p.text for p in self.content)
        return ChatMessage(role="system" if self.role == "developer" else self.role, content=text)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = False


class ChatCompletionsBody(BaseModel):
    """The subset of OpenAI's chat completion request the platform serves; other parameters are refused."""

    model_config = ConfigDict(extra="forbid")

    model: ModelName
    messages: Annotated[list[Message], *limits("messages")]
    temperature: Temperature | None = None
    top_p: TopP | None = None
    max_tokens: MaxTokens | None = Field(None, description="At most the model's priced cap.")
    max_completion_tokens: MaxTokens | None = Field(None, description="At most the model's priced cap.")
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: Literal[1] | None = Field(None, description="Only one choice is produced.")
    user: str | None = Field(None, max_length=256, description="Accepted and ignored: the token says who asks.")
    logprobs: Literal[False] | None = None
    store: bool | None = Field(None, description="Accepted and ignored.")
    thread_id: uuid.UUID | None = Field(None, description=f"Not OpenAI's: {THREAD_DOC} (SDK: `extra_body`)")


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletionView,
    summary="OpenAI-compatible chat completion (plain or streamed)",
    responses={
        200: {
            "description": "A `chat.completion`, or with `stream` `chat.completion.chunk` events and `[DONE]`.",
            "content": event_stream(STREAM),
        },
        **OPENAI_SPENDING,
    },
)
async def chat_completions(
    body: ChatCompletionsBody, caller: UserCaller, rpc: Rpc, settings: Settings, cache_control: CacheControl = None
) -> Any:
    messages = [m.to_chat() for m in body.messages]
    command = CompleteChat(
        messages=messages,
        model=body.model,
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        stream=bool(body.stream),
        use_cache=not wants_fresh(cache_control),
        thread_id=body.thread_id,
    )
    envelope = caller.envelope(command)
    completion_id = f"chatcmpl-{uuid.uuid5(envelope.message_id, 'completion').hex}"
    if not body.stream:
        completion = await rpc.call(envelope, reply_model=ChatCompletion)
        return _completion(completion, completion_id)
    relay = await ChatRelay.open(rpc, envelope)
    events = OpenAIEvents(
        completion_id=completion_id,
        request_id=caller.request_id,
        include_usage=bool(body.stream_options and body.stream_options.include_usage),
    )
    return EventStream(lambda emit: write_events(relay, emit, events), write_timeout_s=settings.stream_write_timeout_s)


@router.get(
    "/v1/models",
    response_model=ModelListView,
    summary="OpenAI-compatible list of the models the platform answers with",
    responses=OPENAI,
)
async def models(caller: UserCaller, rpc: Rpc) -> dict[str, Any]:
    listed = await rpc.call(caller.envelope(ListModels()), reply_model=ModelList)
    return {"object": "list", "data": [_model(m.id, m.provider) for m in listed.models]}


@router.get(
    "/v1/models/{model_id:path}",
    response_model=ModelView,
    summary="OpenAI-compatible model lookup",
    responses=OPENAI | OPENAI_NOT_FOUND,
)
async def model(model_id: str, caller: UserCaller, rpc: Rpc) -> dict[str, Any]:
    listed = await rpc.call(caller.envelope(ListModels()), reply_model=ModelList)
    found = next((m for m in listed.models if m.id == model_id), None)
    if found is None:
        raise NotFound(f"The model '{model_id}' does not exist")
    return _model(found.id, found.provider)


def _model(model_id: str, provider: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": provider}


def _completion(completion: ChatCompletion, completion_id: str) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": completion.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": completion.message.content, "refusal": None},
                "logprobs": None,
                "finish_reason": _FINISH.get(completion.finish_reason, "stop"),
            }
        ],
        "usage": completion.usage.model_dump(),
        "system_fingerprint": None,
        "provider": completion.provider,
        "cached": completion.cached,
        "credits": completion.credits,
        **({"thread_id": str(completion.thread_id)} if completion.thread_id else {}),
    }


class OpenAIEvents:
    """`data: {chat.completion.chunk}` events, the finish chunk, the usage chunk if asked, `data: [DONE]`."""

    def __init__(self, *, completion_id: str, request_id: str, include_usage: bool) -> None:
        self._id = completion_id
        self._request_id = request_id
        self._include_usage = include_usage
        self._created = int(time.time())
        self._started = False

    def _event(self, *, model: str, provider: str, cached: bool, choices: list[Any], **extra: Any) -> bytes:
        body = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": model,
            "system_fingerprint": None,
            "choices": choices,
            "provider": provider,
            "cached": cached,
            **({"usage": None} if self._include_usage else {}),
            **extra,
        }
        return format_sse_event(data_str=json.dumps(body, separators=(",", ":")))

    def _delta(self, text: str) -> dict[str, Any]:
        delta: dict[str, Any] = {"content": text}
        if not self._started:
            delta["role"] = "assistant"
            self._started = True
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}

    def chunk(self, chunk: ChatChunk) -> bytes:
        return self._event(
            model=chunk.model, provider=chunk.provider, cached=chunk.cached, choices=[self._delta(chunk.delta)]
        )

    def done(self, completion: ChatCompletion, *, streamed_any: bool) -> bytes:
        common: dict[str, Any] = {
            "model": completion.model,
            "provider": completion.provider,
            "cached": completion.cached,
        }
        out = b"" if streamed_any else self._event(**common, choices=[self._delta(completion.message.content)])
        finish = {
            "index": 0,
            "delta": {},
            "logprobs": None,
            "finish_reason": _FINISH.get(completion.finish_reason, "stop"),
        }
        out += self._event(**common, choices=[finish])
        if self._include_usage:
            out += self._event(**common, choices=[], usage=completion.usage.model_dump(), credits=completion.credits)
        return out + format_sse_event(data_str="[DONE]")

    def error(self, error: PlatformError) -> bytes:
        body = error_body(error, self._request_id)
        return format_sse_event(data_str=json.dumps(body, separators=(",", ":")))
