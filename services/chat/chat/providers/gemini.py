"""Gemini through Google's official `google-genai` SDK (the successor of the retired
`google-generativeai`), async, pointed at `GOOGLE_GEMINI_BASE_URL` when set.

The SDK retries nothing by default, which is what we want: retries, timeouts and failover
belong to `chat.failover`, so they are counted and bounded by the request's deadline."""

from __future__ import annotations

import base64
import json
import mimetypes
import uuid
from typing import Any

import aiohttp
import httpx2
import pydantic
from google import genai
from google.genai import errors, types

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
from common.contracts.chatfeatures import FunctionTool, ToolCall, ToolChoice

NAME = "gemini"
_FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}


def client(*, api_key: str, base_url: str | None, timeout_s: float) -> genai.Client:
    """google-genai's client as every Gemini adapter here uses it: one timeout, the base URL given."""
    return genai.Client(
        api_key=api_key, http_options=types.HttpOptions(base_url=base_url, timeout=int(timeout_s * 1000))
    )


class GeminiProvider:
    name = NAME

    def __init__(self, *, api_key: str, base_url: str | None, default_model: str, timeout_s: float) -> None:
        self.default_model = default_model
        # Kept referenced for the life of the provider: a collected Client closes its pool.
        self._client = client(api_key=api_key, base_url=base_url, timeout_s=timeout_s)

    def owns(self, model: str) -> bool:
        return model.startswith(("gemini-", "gemma-", "models/gemini-"))

    def model_for(self, requested: str) -> str:
        return requested if self.owns(requested) else self.default_model

    async def complete(self, request: ProviderRequest) -> ProviderAnswer:
        try:
            reply = await self._client.aio.models.generate_content(
                model=request.model, contents=_contents(request), config=_config(request)
            )
            read = _choices(reply)
        except ProviderError:
            raise
        except Exception as exc:
            raise provider_error(exc) from exc
        first = read[0]
        if not all(c.text or c.tool_calls for c in read):  # a reply cannot carry an empty choice
            raise ProviderError(NAME, f"empty answer (finish reason {first.finish_reason})", retryable=False)
        usage = reply.usage_metadata
        return ProviderAnswer(
            text=first.text,
            model=reply.model_version or request.model,
            prompt_tokens=(usage.prompt_token_count if usage else None) or 0,
            completion_tokens=(usage.candidates_token_count if usage else None) or count_tokens(_all_text(read)),
            finish_reason=first.finish_reason,
            tool_calls=first.tool_calls,
            more=tuple(read[1:]),
        )

    async def stream(self, request: ProviderRequest) -> ProviderStream:
        """The first candidate's text as it comes; its function calls and the other candidates with the answer."""
        texts: dict[int, list[str]] = {}
        calls: dict[int, list[ToolCall]] = {}
        finishes: dict[int, FinishReason] = {}
        usage: types.GenerateContentResponseUsageMetadata | None = None
        model = request.model
        try:
            chunks = await self._client.aio.models.generate_content_stream(
                model=request.model, contents=_contents(request), config=_config(request)
            )
            async for chunk in chunks:
                usage = chunk.usage_metadata or usage
                model = chunk.model_version or model
                for index, choice in enumerate(_choices(chunk, final=False)):
                    index = _index(chunk, index)
                    calls.setdefault(index, []).extend(choice.tool_calls)
                    if choice.finish_reason != "stop" or index not in finishes:
                        finishes[index] = choice.finish_reason
                    if choice.text:
                        texts.setdefault(index, []).append(choice.text)
                        if index == 0:
                            yield choice.text
        except ProviderError:
            raise
        except Exception as exc:
            raise provider_error(exc) from exc
        read = [
            _choice("".join(texts.get(i, [])), calls.get(i, []), finishes.get(i, "stop"))
            for i in range(max(request.n, 1))
        ]
        first = read[0]
        if not all(c.text or c.tool_calls for c in read):  # a reply cannot carry an empty choice
            raise ProviderError(NAME, f"empty answer (finish reason {first.finish_reason})", retryable=False)
        yield ProviderAnswer(
            text=first.text,
            model=model,
            prompt_tokens=(usage.prompt_token_count if usage else None) or 0,
            completion_tokens=(usage.candidates_token_count if usage else None) or count_tokens(_all_text(read)),
            finish_reason=first.finish_reason,
            tool_calls=first.tool_calls,
            more=tuple(read[1:]),
        )

    async def aclose(self) -> None:
        await self._client.aio.aclose()
        self._client.close()


def _contents(request: ProviderRequest) -> list[types.Content]:
    """The conversation as Gemini turns: assistant turns are the model's (its function calls among
    them), tool results go back as the user's functionResponse parts, one turn for a run of them."""
    names = {c.id: c.name for m in request.messages for c in m.tool_calls}
    contents: list[types.Content] = []
    for m in request.messages:
        if m.role == "system":
            continue
        parts = _parts(m, names)
        if not parts:
            continue
        role = "model" if m.role == "assistant" else "user"
        last = contents[-1] if contents else None
        if m.role == "tool" and last is not None and last.parts and last.parts[-1].function_response is not None:
            last.parts.extend(parts)
            continue
        contents.append(types.Content(role=role, parts=parts))
    if not contents:  # a conversation of instructions only: send them as the question
        contents = [types.Content(role="user", parts=[types.Part(text=m.content)]) for m in request.messages]
    return contents


def _parts(m: ChatMessage, names: dict[str, str]) -> list[types.Part]:
    if m.role == "tool":
        call_id = m.tool_call_id or ""
        response = _object(m.content, key="result")
        return [
            types.Part(
                function_response=types.FunctionResponse(
                    id=call_ids.plain(call_id) or None, name=names.get(call_id, "tool"), response=response
                )
            )
        ]
    parts = [types.Part(text=m.content)] if m.content else []
    parts += [_image(image.url) for image in m.images]
    parts += [_call(c) for c in m.tool_calls]
    return parts


def _call(c: ToolCall) -> types.Part:
    """A function call the model made, with the thought signature it came with (see `call_ids`)."""
    call_id, signature = call_ids.split(c.id)
    return types.Part(
        function_call=types.FunctionCall(id=call_id, name=c.name, args=_object(c.arguments, key="arguments")),
        thought_signature=signature,
    )


def _object(text: str, *, key: str) -> dict[str, Any]:
    """JSON text as the object Gemini wants: itself when it is one, else wrapped under `key`."""
    try:
        value = json.loads(text)
    except ValueError:
        return {key: text}
    return value if isinstance(value, dict) else {key: value}


def _image(url: str) -> types.Part:
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        mime = header.removeprefix("data:").split(";")[0]
        return types.Part(inline_data=types.Blob(mime_type=mime, data=base64.b64decode(data)))
    mime = mimetypes.guess_type(url.split("?")[0])[0] or "image/jpeg"
    return types.Part(file_data=types.FileData(file_uri=url, mime_type=mime))


def _config(request: ProviderRequest) -> types.GenerateContentConfig:
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    has_turns = any(m.role != "system" for m in request.messages)
    fmt = request.response_format
    json_out = fmt is not None and fmt.type != "text"
    return types.GenerateContentConfig(
        system_instruction=system if system and has_turns else None,
        temperature=request.temperature,
        top_p=request.top_p,
        max_output_tokens=request.max_tokens,
        tools=[types.Tool(function_declarations=[_declaration(t) for t in request.tools])] if request.tools else None,
        tool_config=_tool_config(request.tool_choice) if request.tools and request.tool_choice else None,
        response_mime_type="application/json" if json_out else None,
        response_json_schema=(fmt.json_schema or {"type": "object"}) if fmt and fmt.type == "json_schema" else None,
        candidate_count=request.n if request.n > 1 else None,
        stop_sequences=list(request.stop) or None,
        seed=request.seed,
        presence_penalty=request.presence_penalty,
        frequency_penalty=request.frequency_penalty,
    )


def _declaration(tool: FunctionTool) -> types.FunctionDeclaration:
    return types.FunctionDeclaration(
        name=tool.name, description=tool.description, parameters_json_schema=tool.parameters or None
    )


def _tool_config(choice: ToolChoice) -> types.ToolConfig:
    if choice.function is not None:
        config = types.FunctionCallingConfig(
            mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=[choice.function]
        )
    else:
        config = types.FunctionCallingConfig(mode=_MODES[choice.mode])
    return types.ToolConfig(function_calling_config=config)


_MODES = {
    "none": types.FunctionCallingConfigMode.NONE,
    "auto": types.FunctionCallingConfigMode.AUTO,
    "required": types.FunctionCallingConfigMode.ANY,
}


def _index(reply: types.GenerateContentResponse, position: int) -> int:
    candidates = reply.candidates or []
    index = candidates[position].index if position < len(candidates) else None
    return index if index is not None else position


def _choices(reply: types.GenerateContentResponse, *, final: bool = True) -> list[Choice]:
    """Each candidate's text, function calls and finish reason (a blocked prompt: one empty, filtered)."""
    candidates = reply.candidates or []
    if not candidates:
        blocked = reply.prompt_feedback and reply.prompt_feedback.block_reason
        if blocked:
            return [Choice(text="", finish_reason="content_filter")]
        if not final:
            return []
        raise ProviderError(NAME, "reply without candidates", retryable=True)
    out = []
    for candidate in sorted(candidates, key=lambda c: c.index or 0):
        parts = (candidate.content.parts if candidate.content else None) or []
        text = "".join(p.text for p in parts if p.text and not p.thought)
        calls = [
            ToolCall(
                id=call_ids.signed(p.function_call.id or f"call_{uuid.uuid4().hex[:24]}", p.thought_signature),
                name=p.function_call.name or "",
                arguments=json.dumps(p.function_call.args or {}, separators=(",", ":")),
            )
            for p in parts
            if p.function_call is not None
        ]
        reason = candidate.finish_reason.value if candidate.finish_reason else None
        out.append(_choice(text, calls, _finish(reason)))
    return out


def _choice(text: str, calls: list[ToolCall], finish: FinishReason) -> Choice:
    return Choice(
        text=text, tool_calls=tuple(calls), finish_reason="tool_calls" if calls and finish == "stop" else finish
    )


def _finish(reason: str | None) -> FinishReason:
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _FILTERED:
        return "content_filter"
    return "stop"


def _all_text(choices: list[Choice]) -> str:
    return " ".join(c.text + " ".join(t.arguments for t in c.tool_calls) for c in choices)


def provider_error(exc: BaseException) -> ProviderError:
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
