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

from chat.providers.base import (
    ProviderAnswer,
    ProviderError,
    ProviderRequest,
    ProviderStream,
    count_tokens,
    status_retryable,
)
from common.contracts import FinishReason

NAME = "openai"
_FINISH: dict[str | None, FinishReason] = {"length": "length", "content_filter": "content_filter"}


class OpenAIProvider:
    name = NAME

    def __init__(self, *, api_key: str, base_url: str | None, default_model: str, timeout_s: float) -> None:
        self.default_model = default_model
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=timeout_s,
            http_client=openai.DefaultAioHttpClient(timeout=timeout_s),
        )

    def owns(self, model: str) -> bool:
        return model.startswith(("gpt-", "o1", "o3", "o4", "chatgpt-"))

    def model_for(self, requested: str) -> str:
        return requested if self.owns(requested) else self.default_model

    async def complete(self, request: ProviderRequest) -> ProviderAnswer:
        # The SDK's generic `post` with the JSON it answers (`cast_to=object`): the same request,
        # headers, auth and typed errors as `chat.completions.create`, without re-walking our
        # already-plain parameters against its TypedDicts and building models we would only read
        # five fields of (a third of the SDK's CPU per call).
        try:
            # The JSON object as parsed: `cast_to=object` hands it back untouched.
            reply = cast(
                "dict[str, Any]", await self._client.post("/chat/completions", body=_params(request), cast_to=object)
            )
            choice = reply["choices"][0] if reply.get("choices") else None
            text = choice["message"].get("content") if choice else None
            usage = reply.get("usage") or {}
        except Exception as exc:
            raise _error(exc) from exc
        if not text or not isinstance(text, str):
            raise ProviderError(NAME, "empty answer", retryable=False)
        return ProviderAnswer(
            text=text,
            model=reply.get("model") or request.model,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or count_tokens(text)),
            finish_reason=_FINISH.get(choice.get("finish_reason") if choice else None, "stop"),
        )

    async def stream(self, request: ProviderRequest) -> ProviderStream:
        text: list[str] = []
        finish: FinishReason = "stop"
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
                    for choice in chunk.choices[:1]:
                        if choice.finish_reason:
                            finish = _FINISH.get(choice.finish_reason, "stop")
                        if choice.delta.content:
                            text.append(choice.delta.content)
                            yield choice.delta.content
            finally:
                await chunks.close()
        except Exception as exc:
            raise _error(exc) from exc
        whole = "".join(text)
        if not whole:
            raise ProviderError(NAME, "empty answer", retryable=False)
        yield ProviderAnswer(
            text=whole,
            model=model,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else count_tokens(whole),
            finish_reason=finish,
        )

    async def aclose(self) -> None:
        await self._client.close()


def _params(request: ProviderRequest) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": request.model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
    }
    if request.temperature is not None:
        params["temperature"] = request.temperature
    if request.top_p is not None:
        params["top_p"] = request.top_p
    if request.max_tokens is not None:
        params["max_completion_tokens"] = request.max_tokens
    return params


def _error(exc: BaseException) -> ProviderError:
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
