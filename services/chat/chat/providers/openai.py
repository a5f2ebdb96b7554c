"""OpenAI through the official `openai` SDK, async, pointed at `OPENAI_BASE_URL` when set.

The SDK's own retries are turned off (`max_retries=0`): retries, timeouts and failover belong
to `chat.failover`, so they are counted and bounded by the request's deadline. It sends through
its aiohttp transport (the `aiohttp` extra), which costs a fraction of the default one's CPU
per call."""

from __future__ import annotations

import json
from typing import Any, cast

import openai
import pydantic

from chat.providers import call_ids
from chat.providers.base import (
    Choice,
    ProviderAnswer,
    ProviderError,
    ProviderRequest,
    ProviderStream,
    count_tokens,
    status_retryable,
)
from common.contracts import ChatMessage, FinishReason
from common.contracts.chatfeatures import FunctionTool, ResponseFormat, ToolCall, ToolChoice

NAME = "openai"
_FINISH: dict[str | None, FinishReason] = {
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}


def client(*, api_key: str, base_url: str | None, timeout_s: float) -> openai.AsyncOpenAI:
    """The SDK's client as every OpenAI adapter here uses it: no retries of its own (failover
    retries), one timeout, and aiohttp underneath."""
    return openai.AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        max_retries=0,
        timeout=timeout_s,
        http_client=openai.DefaultAioHttpClient(timeout=timeout_s),
    )


class OpenAIProvider:
    name = NAME

    def __init__(self, *, api_key: str, base_url: str | None, default_model: str, timeout_s: float) -> None:
        self.default_model = default_model
        self._client = client(api_key=api_key, base_url=base_url, timeout_s=timeout_s)

    def owns(self, model: str) -> bool:
        return model.startswith(("gpt-", "o1", "o3", "o4", "chatgpt-"))

    def model_for(self, requested: str) -> str:
        return requested if self.owns(requested) else self.default_model

    async def complete(self, request: ProviderRequest) -> ProviderAnswer:
        # The SDK's generic `post` with the JSON it answers (`cast_to=object`): the same request,
        # headers, auth and typed errors as `chat.completions.create`, without re-walking our
        # already-plain parameters against its TypedDicts and building models we would only read
        # a few fields of (a third of the SDK's CPU per call).
        try:
            # The JSON object as parsed: `cast_to=object` hands it back untouched.
            reply = cast(
                "dict[str, Any]", await self._client.post("/chat/completions", body=_params(request), cast_to=object)
            )
            choices = sorted(reply.get("choices") or [], key=lambda c: c.get("index", 0))
            read = [_choice(c["message"].get("content"), c["message"].get("tool_calls"), c) for c in choices]
            usage = reply.get("usage") or {}
        except Exception as exc:
            raise provider_error(exc) from exc
        if not read or not all(c.text or c.tool_calls for c in read):  # a reply cannot carry an empty choice
            raise ProviderError(NAME, "empty answer", retryable=False)
        first, more = read[0], tuple(read[1:])
        return ProviderAnswer(
            text=first.text,
            model=reply.get("model") or request.model,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or count_tokens(_all_text(read))),
            finish_reason=first.finish_reason,
            tool_calls=first.tool_calls,
            more=more,
        )

    async def stream(self, request: ProviderRequest) -> ProviderStream:
        """The first choice's text as it comes; its tool calls and the other choices with the answer."""
        texts: dict[int, list[str]] = {}
        calls: dict[int, dict[int, dict[str, str]]] = {}
        finishes: dict[int, FinishReason] = {}
        usage = None
        model = request.model
        try:
            chunks = await self._client.chat.completions.create(
                **_params(request), stream=True, stream_options={"include_usage": True}
            )
            try:
                async for chunk in chunks:
                    model = chunk.model or model
                    usage = chunk.usage or usage
                    for choice in chunk.choices:
                        if choice.finish_reason:
                            finishes[choice.index] = _FINISH.get(choice.finish_reason, "stop")
                        for call in choice.delta.tool_calls or ():
                            part = calls.setdefault(choice.index, {}).setdefault(
                                call.index, {"id": "", "name": "", "arguments": ""}
                            )
                            part["id"] = call.id or part["id"]
                            if call.function is not None:
                                part["name"] += call.function.name or ""
                                part["arguments"] += call.function.arguments or ""
                        if choice.delta.content:
                            texts.setdefault(choice.index, []).append(choice.delta.content)
                            if choice.index == 0:
                                yield choice.delta.content
            finally:
                await chunks.close()
            read = [
                Choice(
                    text="".join(texts.get(i, [])),
                    tool_calls=tuple(ToolCall(**c) for _, c in sorted(calls.get(i, {}).items())),
                    finish_reason=finishes.get(i, "stop"),
                )
                for i in range(max(request.n, 1))
            ]
        except Exception as exc:
            raise provider_error(exc) from exc
        first = read[0]
        if not all(c.text or c.tool_calls for c in read):  # a reply cannot carry an empty choice
            raise ProviderError(NAME, "empty answer", retryable=False)
        yield ProviderAnswer(
            text=first.text,
            model=model,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else count_tokens(_all_text(read)),
            finish_reason=first.finish_reason,
            tool_calls=first.tool_calls,
            more=tuple(read[1:]),
        )

    async def aclose(self) -> None:
        await self._client.close()


def _choice(content: Any, tool_calls: Any, choice: dict[str, Any]) -> Choice:
    calls = tuple(
        ToolCall(id=c["id"], name=c["function"]["name"], arguments=c["function"].get("arguments") or "{}")
        for c in tool_calls or ()
    )
    text = content if isinstance(content, str) else ""
    return Choice(text=text, tool_calls=calls, finish_reason=_FINISH.get(choice.get("finish_reason"), "stop"))


def _all_text(choices: list[Choice]) -> str:
    return " ".join(c.text + " ".join(t.arguments for t in c.tool_calls) for c in choices)


def _params(request: ProviderRequest) -> dict[str, Any]:
    params: dict[str, Any] = {"model": request.model, "messages": [_message(m) for m in request.messages]}
    if request.temperature is not None:
        params["temperature"] = request.temperature
    if request.top_p is not None:
        params["top_p"] = request.top_p
    if request.max_tokens is not None:
        params["max_completion_tokens"] = request.max_tokens
    if request.tools:
        params["tools"] = [_tool(t) for t in request.tools]
        if request.tool_choice is not None:
            params["tool_choice"] = _tool_choice(request.tool_choice)
    if request.response_format is not None:
        params["response_format"] = _response_format(request.response_format)
    optional = {
        "n": request.n if request.n > 1 else None,
        "stop": list(request.stop) or None,
        "seed": request.seed,
        "presence_penalty": request.presence_penalty,
        "frequency_penalty": request.frequency_penalty,
        "user": request.end_user,
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    return params


def _message(m: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role}
    if m.images and m.role == "user":  # OpenAI takes image parts in user messages only
        parts: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
        parts += [{"type": "image_url", "image_url": {"url": i.url, "detail": i.detail}} for i in m.images]
        out["content"] = parts
    else:
        out["content"] = m.content or None
    if m.tool_calls and m.role == "assistant":
        out["tool_calls"] = [
            {"id": call_ids.plain(c.id), "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in m.tool_calls
        ]
    if m.role == "tool":
        out["tool_call_id"] = call_ids.plain(m.tool_call_id or "")
        out["content"] = m.content
    return out


def _tool(tool: FunctionTool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    for key in ("description", "parameters", "strict"):
        if (value := getattr(tool, key)) is not None:
            function[key] = value
    return {"type": "function", "function": function}


def _tool_choice(choice: ToolChoice) -> Any:
    if choice.function is not None:
        return {"type": "function", "function": {"name": choice.function}}
    return choice.mode


def _response_format(fmt: ResponseFormat) -> dict[str, Any]:
    if fmt.type != "json_schema":
        return {"type": fmt.type}
    spec: dict[str, Any] = {"name": fmt.name or "answer", "schema": fmt.json_schema or {"type": "object"}}
    if fmt.description is not None:
        spec["description"] = fmt.description
    if fmt.strict is not None:
        spec["strict"] = fmt.strict
    return {"type": "json_schema", "json_schema": spec}


def provider_error(exc: BaseException) -> ProviderError:
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        return ProviderError(
            NAME,
            f"HTTP {status}",
            retryable=status_retryable(status),
            status=status,
            counts=status not in (400, 404, 413, 422),
            timed_out=status in (408, 504),
        )
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return ProviderError(NAME, "timed out", retryable=True, timed_out=True)
    if isinstance(exc, openai.APIConnectionError | OSError):
        return ProviderError(NAME, f"connection failed ({type(exc).__name__})", retryable=True)
    if isinstance(exc, openai.APIResponseValidationError | json.JSONDecodeError | pydantic.ValidationError):
        return ProviderError(NAME, f"malformed reply ({type(exc).__name__})", retryable=True)
    if isinstance(exc, openai.APIError):  # e.g. an error event inside a stream
        return ProviderError(NAME, "error in the reply", retryable=True)
    if isinstance(exc, ValueError | IndexError | AttributeError | KeyError | TypeError):
        return ProviderError(NAME, f"malformed reply ({type(exc).__name__})", retryable=True)
    return ProviderError(NAME, f"unexpected failure ({type(exc).__name__})", retryable=False)
