"""An OpenAI-compatible surface, so the official `openai` SDK and other OpenAI clients work
against the gateway unchanged, with a user's bearer token as their API key:
`POST /v1/chat/completions` (plain and `stream: true`; function tools and tool results, JSON and
JSON-schema response formats, image parts, `n` choices, `stop`, `seed`, the penalties, `user`) and
`GET /v1/models[/{id}]`.

Errors on these routes use OpenAI's shape (see `errors.py`). Answers add `provider`, `cached` and `credits` to
OpenAI's fields; clients ignore what they do not know."""

from __future__ import annotations

import json
import time
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from fastapi.sse import format_sse_event
from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.contracts import ChatChunk, ChatCompletion, ChatMessage, CompleteChat, FinishReason, ListModels, ModelList
from common.contracts.chat import MAX_CONTENT_CHARS, ChatChoice
from common.contracts.chatfeatures import (
    FUNCTION_NAME,
    IMAGE_URL,
    MAX_CALL_ID,
    MAX_IMAGE_URL,
    MAX_TOOLS,
    FunctionTool,
    ImageDetail,
    ImageInput,
    ResponseFormat,
    ToolCall,
    ToolChoice,
)
from common.errors import NotFound, PlatformError
from gateway.chat_limits import (
    Choices,
    EndUser,
    MaxTokens,
    ModelName,
    Penalty,
    Seed,
    Stops,
    StopText,
    Temperature,
    TopP,
    check_tool_choice,
    limits,
)
from gateway.chat_relay import ChatRelay, write_events
from gateway.deps import Rpc, Settings, UserCaller
from gateway.http.responses import OPENAI, OPENAI_NOT_FOUND, OPENAI_SPENDING, event_stream
from gateway.http.sse import EventStream
from gateway.openai.errors import OpenAIRoute, error_body
from gateway.openai.views import STREAM, ChatCompletionView, ModelListView, ModelView
from gateway.routes.chat import THREAD_DOC, CacheControl, wants_fresh

_FINISH: dict[FinishReason, str] = {"length": "length", "content_filter": "content_filter", "tool_calls": "tool_calls"}


router = APIRouter(tags=["openai-compatible"], route_class=OpenAIRoute)


# A message's text, joined from its parts with newlines, must fit one ChatMessage.
MAX_PARTS = 8
PART_CHARS = (MAX_CONTENT_CHARS - (MAX_PARTS - 1)) // MAX_PARTS
TextContent = Annotated[str, Field(min_length=1, max_length=MAX_CONTENT_CHARS)]
CallId = Annotated[str, Field(min_length=1, max_length=MAX_CALL_ID)]
FunctionName = Annotated[str, Field(pattern=FUNCTION_NAME)]


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    text: str = Field(min_length=1, max_length=PART_CHARS)


class ImageURL(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=MAX_IMAGE_URL, pattern=IMAGE_URL, description="https URL or base64 data URL.")
    detail: ImageDetail = "auto"


class ImagePart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["image_url"]
    image_url: ImageURL


TextParts = Annotated[list[TextPart], Field(min_length=1, max_length=MAX_PARTS)]
UserParts = Annotated[
    list[Annotated[TextPart | ImagePart, Field(discriminator="type")]], Field(min_length=1, max_length=MAX_PARTS)
]


def _text(content: str | list[Any] | None) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    return "\n".join(p.text for p in content if isinstance(p, TextPart))


class SystemInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer"]
    content: TextContent | TextParts
    name: str | None = Field(None, max_length=64, description="Accepted and ignored.")

    def to_chat(self) -> ChatMessage:
        return ChatMessage(role="system", content=_text(self.content))


class UserInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user"]
    content: TextContent | UserParts = Field(description="Text, or text and image parts (images are priced).")
    name: str | None = Field(None, max_length=64, description="Accepted and ignored.")

    def to_chat(self) -> ChatMessage:
        parts = [] if isinstance(self.content, str) else self.content
        images = [ImageInput(url=p.image_url.url, detail=p.image_url.detail) for p in parts if isinstance(p, ImagePart)]
        return ChatMessage(role="user", content=_text(self.content), images=images)


class FunctionCallInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: FunctionName
    arguments: str = Field(max_length=32_000, description="JSON text, as the model produced it.")


class ToolCallInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: CallId
    type: Literal["function"]
    function: FunctionCallInput


class AssistantInput(BaseModel):
    """An earlier answer: text, tool calls, or both."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": ["content"], "properties": {"content": {"not": {"type": "null"}}}},
                {"required": ["tool_calls"], "properties": {"tool_calls": {"type": "array"}}},
            ]
        },
    )

    role: Literal["assistant"]
    content: TextContent | TextParts | None = None
    tool_calls: list[ToolCallInput] | None = Field(None, min_length=1, max_length=MAX_TOOLS)
    refusal: str | None = Field(None, max_length=MAX_CONTENT_CHARS, description="Accepted and ignored.")
    name: str | None = Field(None, max_length=64, description="Accepted and ignored.")

    @model_validator(mode="after")
    def _says_something(self) -> AssistantInput:
        if self.content is None and not self.tool_calls:
            raise ValueError("an assistant message needs content or tool_calls")
        return self

    def to_chat(self) -> ChatMessage:
        calls = [ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments) for c in self.tool_calls or ()]
        return ChatMessage(role="assistant", content=_text(self.content), tool_calls=calls)


class ToolInput(BaseModel):
    """A function's result, for the call `tool_call_id`."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["tool"]
    content: TextContent | TextParts
    tool_call_id: CallId

    def to_chat(self) -> ChatMessage:
        return ChatMessage(role="tool", content=_text(self.content), tool_call_id=self.tool_call_id)


Message = Annotated[SystemInput | UserInput | AssistantInput | ToolInput, Field(discriminator="role")]


class FunctionInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: FunctionName
    description: str | None = Field(None, max_length=4096)
    parameters: dict[str, Any] | None = Field(None, description="JSON Schema of the arguments object.")
    strict: bool | None = None


class ToolDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    function: FunctionInput


class NamedFunction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: FunctionName


class NamedToolChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    function: NamedFunction


class TextFormat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]


class JsonObjectFormat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["json_object"]


class JsonSchemaSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: FunctionName
    description: str | None = Field(None, max_length=4096)
    schema_: dict[str, Any] | None = Field(None, alias="schema", description="The JSON Schema the answer matches.")
    strict: bool | None = None


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


Format = Annotated[TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")]


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
    max_tokens: MaxTokens | None = Field(None, description="At most the model's priced cap (per choice).")
    max_completion_tokens: MaxTokens | None = Field(None, description="At most the model's priced cap (per choice).")
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    tools: list[ToolDefinition] | None = Field(None, max_length=MAX_TOOLS, description="Functions the model may call.")
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = Field(
        None, description="A named function must be one of `tools`."
    )
    response_format: Format | None = None
    n: Choices | None = Field(None, description="Choices to produce; each is charged.")
    stop: StopText | Stops | None = None
    seed: Seed | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    user: EndUser | None = Field(None, description="Your end user's label, passed on to OpenAI.")
    logprobs: Literal[False] | None = None
    store: bool | None = Field(None, description="Accepted and ignored.")
    thread_id: uuid.UUID | None = Field(None, description=f"Not OpenAI's: {THREAD_DOC} (SDK: `extra_body`)")

    def command(self, *, use_cache: bool) -> CompleteChat:
        tools = [FunctionTool(**t.function.model_dump()) for t in self.tools or ()]
        tool_choice = _tool_choice(self.tool_choice)
        check_tool_choice(tool_choice, tools)
        return CompleteChat(
            messages=[m.to_chat() for m in self.messages],
            model=self.model,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_completion_tokens or self.max_tokens,
            stream=bool(self.stream),
            use_cache=use_cache,
            thread_id=self.thread_id,
            tools=tools,
            tool_choice=tool_choice,
            response_format=_response_format(self.response_format),
            n=self.n or 1,
            stop=[self.stop] if isinstance(self.stop, str) else self.stop or [],
            seed=self.seed,
            presence_penalty=self.presence_penalty,
            frequency_penalty=self.frequency_penalty,
            end_user=self.user,
        )


def _tool_choice(choice: str | NamedToolChoice | None) -> ToolChoice | None:
    if choice is None:
        return None
    if isinstance(choice, NamedToolChoice):
        return ToolChoice(mode="required", function=choice.function.name)
    return ToolChoice(mode=choice)  # type: ignore[arg-type]


def _response_format(fmt: TextFormat | JsonObjectFormat | JsonSchemaFormat | None) -> ResponseFormat | None:
    if fmt is None:
        return None
    if isinstance(fmt, JsonSchemaFormat):
        spec = fmt.json_schema
        return ResponseFormat(
            type="json_schema",
            name=spec.name,
            description=spec.description,
            json_schema=spec.schema_,
            strict=spec.strict,
        )
    return ResponseFormat(type=fmt.type)


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
    command = body.command(use_cache=not wants_fresh(cache_control))
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
    return {"object": "list", "data": _models(listed)}


@router.get(
    "/v1/models/{model_id:path}",
    response_model=ModelView,
    summary="OpenAI-compatible model lookup",
    responses=OPENAI | OPENAI_NOT_FOUND,
)
async def model(model_id: str, caller: UserCaller, rpc: Rpc) -> dict[str, Any]:
    listed = await rpc.call(caller.envelope(ListModels()), reply_model=ModelList)
    found = next((m for m in _models(listed) if m["id"] == model_id), None)
    if found is None:
        raise NotFound(f"The model '{model_id}' does not exist")
    return found


def _models(listed: ModelList) -> list[dict[str, Any]]:
    """The chat models, then the embedding models, as OpenAI lists models (plus what each is for)."""
    return [_model(m.id, m.provider, "chat") for m in listed.models] + [
        _model(m.id, m.provider, "embedding") for m in listed.embedding_models
    ]


def _model(model_id: str, provider: str, kind: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": provider, "kind": kind}


def _choices(completion: ChatCompletion) -> list[ChatChoice]:
    return completion.choices or [
        ChatChoice(index=0, message=completion.message, finish_reason=completion.finish_reason)
    ]


def _calls(message: ChatMessage) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in message.tool_calls
    ]


def _completion(completion: ChatCompletion, completion_id: str) -> dict[str, Any]:
    choices = []
    for choice in _choices(completion):
        message: dict[str, Any] = {"role": "assistant", "content": choice.message.content or None, "refusal": None}
        if choice.message.tool_calls:
            message["tool_calls"] = _calls(choice.message)
        choices.append(
            {
                "index": choice.index,
                "message": message,
                "logprobs": None,
                "finish_reason": _FINISH.get(choice.finish_reason, "stop"),
            }
        )
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": completion.model,
        "choices": choices,
        "usage": completion.usage.model_dump(),
        "system_fingerprint": None,
        "provider": completion.provider,
        "cached": completion.cached,
        "credits": completion.credits,
        **({"thread_id": str(completion.thread_id)} if completion.thread_id else {}),
    }


class OpenAIEvents:
    """`data: {chat.completion.chunk}` events, the finish chunk, the usage chunk if asked, `data: [DONE]`.

    The first choice's text streams as it is produced; its tool calls, and the other choices of a
    request for several, come whole from the reply, each as one delta before its finish chunk."""

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
        out = b""
        for choice in _choices(completion):
            delta: dict[str, Any] = {}
            if choice.index == 0:
                if not streamed_any and choice.message.content:
                    delta = self._delta(choice.message.content)["delta"]
                elif not self._started:
                    delta, self._started = {"role": "assistant", "content": None}, True
            else:
                delta = {"role": "assistant", "content": choice.message.content or None}
            if choice.message.tool_calls:
                delta["tool_calls"] = [{"index": i, **c} for i, c in enumerate(_calls(choice.message))]
            if delta:
                out += self._event(
                    **common, choices=[{"index": choice.index, "delta": delta, "logprobs": None, "finish_reason": None}]
                )
            finish = {
                "index": choice.index,
                "delta": {},
                "logprobs": None,
                "finish_reason": _FINISH.get(choice.finish_reason, "stop"),
            }
            out += self._event(**common, choices=[finish])
        if self._include_usage:
            out += self._event(**common, choices=[], usage=completion.usage.model_dump(), credits=completion.credits)
        return out + format_sse_event(data_str="[DONE]")

    def error(self, error: PlatformError) -> bytes:
        body = error_body(error, self._request_id)
        return format_sse_event(data_str=json.dumps(body, separators=(",", ":")))
