"""The Gemini Developer API as `google-genai` speaks it: generateContent, streamGenerateContent, countTokens.

Mounted at `/gemini`: `genai.Client(api_key=..., http_options=types.HttpOptions(base_url="http://HOST:PORT/gemini"))`.
The SDK keeps the base URL's path and appends `{api_version}/models/{model}:{method}`; `v1` (the SDK's
default), `v1beta` and `v1alpha` are all served. The key (`x-goog-api-key` header or `?key=`) must be
present; any value is accepted. Endpoint names in the call log: `generateContent`, `streamGenerateContent`,
`countTokens`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tests.simulator import text
from tests.simulator.wire import json_body, sse, sse_event

if TYPE_CHECKING:
    from tests.simulator.app import Simulator

PROVIDER = "gemini"
VERSIONS = ("v1", "v1beta", "v1alpha")
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error(status: int, message: str) -> JSONResponse:
    """Google's error shape: `{"error": {"code", "message", "status"}}`."""
    name = _STATUS.get(status, "FAILED_PRECONDITION" if status < 500 else "UNKNOWN")
    return JSONResponse({"error": {"code": status, "message": message, "status": name}}, status_code=status)


def _unauthorized(request: Request) -> Response | None:
    if request.headers.get("x-goog-api-key") or request.query_params.get("key"):
        return None
    return error(
        403,
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API.",
    )


def _text(content: object) -> str:
    if not isinstance(content, dict):
        return ""
    parts = content.get("parts")
    if not isinstance(parts, list):
        return ""
    return " ".join(str(p.get("text", "")) for p in parts if isinstance(p, dict) and "text" in p)


def routes(sim: Simulator) -> list[BaseRoute]:
    async def model_method(request: Request) -> Response:
        version = request.path_params["version"]
        model, _, method = request.path_params["target"].partition(":")
        endpoint = method or "models.get"
        stream = method == "streamGenerateContent"
        if reply := await sim.enter(request, PROVIDER, endpoint, error=error, model=model, stream=stream):
            return reply
        if reply := _unauthorized(request):
            return reply
        if version not in VERSIONS or method not in ("generateContent", "streamGenerateContent", "countTokens"):
            return error(404, f"Method not found: {request.method} {request.url.path}")
        body = await json_body(request, error)
        if isinstance(body, Response):
            return body
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            return error(400, "* GenerateContentRequest.contents: contents is not specified")
        system = body.get("systemInstruction")
        request.state.sim_call["messages"] = [{"role": "system", "text": _text(system)} for _ in [system] if system] + [
            {"role": c.get("role", "user"), "text": _text(c)} for c in contents if isinstance(c, dict)
        ]
        prompt_tokens = text.count_tokens(*(_text(c) for c in contents), _text(system))
        if method == "countTokens":
            return JSONResponse({"totalTokens": prompt_tokens})
        users = [c for c in contents if isinstance(c, dict) and c.get("role", "user") == "user"]
        prompt = _text(users[-1]) if users else ""
        config = body.get("generationConfig") if isinstance(body.get("generationConfig"), dict) else {}
        limit = config.get("maxOutputTokens")
        answer, cut = text.truncate(text.answer("Gemini", prompt), limit if isinstance(limit, int) else None)
        reply = _Reply(model, prompt_tokens, "MAX_TOKENS" if cut else "STOP")
        if not stream:
            return JSONResponse(reply.chunk(answer, text.count_tokens(answer), last=True))
        pieces = text.chunks(answer)
        if request.query_params.get("alt") != "sse":  # without alt=sse Google streams one JSON array
            return JSONResponse(reply.all_chunks(pieces))
        return sse(reply.events(pieces, sim.stream_delay(PROVIDER)))

    async def not_found(request: Request) -> Response:
        return error(404, f"Method not found: {request.method} {request.url.path}")

    return [
        Route("/{version}/models/{target}", model_method, methods=["POST"]),
        Route("/{path:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]


class _Reply:
    """Builds GenerateContentResponse bodies for one answer."""

    def __init__(self, model: str, prompt_tokens: int, finish: str) -> None:
        self.model = model
        self.prompt_tokens = prompt_tokens
        self.finish = finish
        self.response_id = uuid.uuid4().hex[:22]

    def chunk(self, piece: str, answer_tokens: int, *, last: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": [{"text": piece}], "role": "model"}, "index": 0}
        if last:
            candidate["finishReason"] = self.finish
        return {
            "candidates": [candidate],
            "usageMetadata": {
                "promptTokenCount": self.prompt_tokens,
                "candidatesTokenCount": answer_tokens,
                "totalTokenCount": self.prompt_tokens + answer_tokens,
            },
            "modelVersion": self.model,
            "responseId": self.response_id,
        }

    def all_chunks(self, pieces: list[str]) -> list[dict[str, Any]]:
        so_far = 0
        out = []
        for i, piece in enumerate(pieces):
            so_far += text.count_tokens(piece)
            out.append(self.chunk(piece, so_far, last=i == len(pieces) - 1))
        return out

    async def events(self, pieces: list[str], delay: float) -> AsyncIterator[bytes]:
        for i, chunk in enumerate(self.all_chunks(pieces)):
            if i:
                await asyncio.sleep(delay)
            yield sse_event(chunk, linesep="\r\n")
