"""Gemini through Google's official `google-genai` SDK (the successor of the retired
`google-generativeai`), async, pointed at `GOOGLE_GEMINI_BASE_URL` when set.

The SDK retries nothing by default, which is what we want: retries, timeouts and failover
belong to `chat.failover`, so they are counted and bounded by the request's deadline."""

from __future__ import annotations

import json

import aiohttp
import httpx2
import pydantic
from google import genai
from google.genai import errors, types

from chat.providers.base import (
    ProviderAnswer,
    ProviderError,
    ProviderRequest,
    ProviderStream,
    count_tokens,
    status_retryable,
)
from common.contracts import FinishReason

NAME = "gemini"
_FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}


class GeminiProvider:
    name = NAME

    def __init__(self, *, api_key: str, base_url: str | None, default_model: str, timeout_s: float) -> None:
        self.default_model = default_model
        options = types.HttpOptions(base_url=base_url, timeout=int(timeout_s * 1000))
        # Kept referenced for the life of the provider: a collected Client closes its pool.
        self._client = genai.Client(api_key=api_key, http_options=options)

    def owns(self, model: str) -> bool:
        return model.startswith(("gemini-", "gemma-", "models/gemini-"))

    def model_for(self, requested: str) -> str:
        return requested if self.owns(requested) else self.default_model

    async def complete(self, request: ProviderRequest) -> ProviderAnswer:
        try:
            reply = await self._client.aio.models.generate_content(
                model=request.model, contents=_contents(request), config=_config(request)
            )
            text, finish = _text_and_finish(reply)
        except ProviderError:
            raise
        except Exception as exc:
            raise _error(exc) from exc
        if not text:
            raise ProviderError(NAME, f"empty answer (finish reason {finish})", retryable=False)
        usage = reply.usage_metadata
        return ProviderAnswer(
            text=text,
            model=reply.model_version or request.model,
            prompt_tokens=(usage.prompt_token_count if usage else None) or 0,
            completion_tokens=(usage.candidates_token_count if usage else None) or count_tokens(text),
            finish_reason=finish,
        )

    async def stream(self, request: ProviderRequest) -> ProviderStream:
        text: list[str] = []
        finish: FinishReason = "stop"
        usage: types.GenerateContentResponseUsageMetadata | None = None
        model = request.model
        try:
            chunks = await self._client.aio.models.generate_content_stream(
                model=request.model, contents=_contents(request), config=_config(request)
            )
            async for chunk in chunks:
                piece, finish = _text_and_finish(chunk, default=finish)
                usage = chunk.usage_metadata or usage
                model = chunk.model_version or model
                if piece:
                    text.append(piece)
                    yield piece
        except ProviderError:
            raise
        except Exception as exc:
            raise _error(exc) from exc
        whole = "".join(text)
        if not whole:
            raise ProviderError(NAME, f"empty answer (finish reason {finish})", retryable=False)
        yield ProviderAnswer(
            text=whole,
            model=model,
            prompt_tokens=(usage.prompt_token_count if usage else None) or 0,
            completion_tokens=(usage.candidates_token_count if usage else None) or count_tokens(whole),
            finish_reason=finish,
        )

    async def aclose(self) -> None:
        await self._client.aio.aclose()
        self._client.close()


def _contents(request: ProviderRequest) -> list[types.Content]:
    contents = [
        types.Content(role="model" if m.role == "assistant" else "user", parts=[types.Part(text=m.content)])
        for m in request.messages
        if m.role != "system"
    ]
    if not contents:  # a conversation of instructions only: send them as the question
        contents = [types.Content(role="user", parts=[types.Part(text=m.content)]) for m in request.messages]
    return contents


def _config(request: ProviderRequest) -> types.GenerateContentConfig:
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    has_turns = any(m.role != "system" for m in request.messages)
    return types.GenerateContentConfig(
        system_instruction=system if system and has_turns else None,
        temperature=request.temperature,
        top_p=request.top_p,
        max_output_tokens=request.max_tokens,
    )


def _text_and_finish(
    reply: types.GenerateContentResponse, *, default: FinishReason = "stop"
) -> tuple[str, FinishReason]:
    candidates = reply.candidates or []
    if not candidates:
        blocked = reply.prompt_feedback and reply.prompt_feedback.block_reason
        if blocked:
            return "", "content_filter"
        raise ProviderError(NAME, "reply without candidates", retryable=True)
    candidate = candidates[0]
    parts = (candidate.content.parts if candidate.content else None) or []
    text = "".join(p.text for p in parts if p.text and not p.thought)
    reason = candidate.finish_reason.value if candidate.finish_reason else None
    if reason is None:
        return text, default
    if reason == "MAX_TOKENS":
        return text, "length"
    if reason in _FILTERED:
        return text, "content_filter"
    return text, "stop"


def _error(exc: BaseException) -> ProviderError:
    if isinstance(exc, errors.APIError):
        status = int(exc.code or 0)
        return ProviderError(
            NAME,
            f"HTTP {status} {exc.status or ''}".strip(),
            retryable=status_retryable(status),
            status=status,
            counts=status not in (400, 404, 413),
            timed_out=status in (408, 504),  # e.g. Gemini's 504 for a prompt too large to finish in time
        )
    if isinstance(exc, httpx2.TimeoutException | TimeoutError):
        return ProviderError(NAME, "timed out", retryable=True, timed_out=True)
    if isinstance(exc, httpx2.TransportError | aiohttp.ClientError | OSError):
        return ProviderError(NAME, f"connection failed ({type(exc).__name__})", retryable=True)
    if isinstance(exc, ValueError | json.JSONDecodeError | pydantic.ValidationError | errors.UnknownApiResponseError):
        return ProviderError(NAME, f"malformed reply ({type(exc).__name__})", retryable=True)
    return ProviderError(NAME, f"unexpected failure ({type(exc).__name__})", retryable=False)
