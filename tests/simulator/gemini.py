"""The Gemini Developer API as `google-genai` speaks it: generateContent, streamGenerateContent, countTokens.

Mounted at `/gemini`: `genai.Client(api_key=..., http_options=types.HttpOptions(base_url="http://HOST:PORT/gemini"))`.
The SDK keeps the base URL's path and appends `{api_version}/models/{model}:{method}`; `v1` (the SDK's
default), `v1beta` and `v1alpha` are all served. The key (`x-goog-api-key` header or `?key=`) must be
present; any value is accepted. Endpoint names in the call log: `generateContent`, `streamGenerateContent`,
`countTokens`.

Thinking models (`gemini-2.5*`, `gemini-3*`) sign the function calls they make: the first
functionCall part of a step carries a `thoughtSignature`. From Gemini 3 on, a request whose
current turn (since the last user text) holds a model function call without the signature it
was given is refused with 400, as Google's API refuses it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tests.simulator import structured, text
from tests.simulator.wire import json_body, sse, sse_event

if TYPE_CHECKING:
    from tests.simulator.app import Simulator

PROVIDER = "gemini"
THINKING = ("gemini-2.5", "gemini-3")  # models that sign their function calls
SIGNATURES_REQUIRED = ("gemini-3",)  # models that refuse a function call sent back unsigned
SIGNATURE_PREFIX = b"sim-thought:"
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
        images = sum(_images(c) for c in contents)
        request.state.sim_call["images"] = images
        prompt_tokens = text.count_tokens(*(_text(c) for c in contents), _text(system)) + (
            images * structured.GEMINI_IMAGE_TOKENS
        )
        if method == "countTokens":
            return JSONResponse({"totalTokens": prompt_tokens})
        if model.startswith(SIGNATURES_REQUIRED) and (unsigned := _unsigned_call(contents)):
            return error(unsigned[0], unsigned[1])
        users = [c for c in contents if isinstance(c, dict) and c.get("role", "user") == "user" and _text(c)]
        prompt = _text(users[-1]) if users else ""
        config = body.get("generationConfig") if isinstance(body.get("generationConfig"), dict) else {}
        asked = _Asked.read(body, config)
        if isinstance(asked, Response):
            return asked
        limit = config.get("maxOutputTokens")
        candidates = [
            asked.candidate(i, prompt, contents, images, limit if isinstance(limit, int) else None)
            for i in range(asked.n)
        ]
        reply = _Reply(model, prompt_tokens, candidates, signs=model.startswith(THINKING))
        if not stream:
            return JSONResponse(reply.whole())
        if request.query_params.get("alt") != "sse":  # without alt=sse Google streams one JSON array
            return JSONResponse(reply.all_chunks())
        return sse(reply.events(sim.stream_delay(PROVIDER)))

    async def not_found(request: Request) -> Response:
        return error(404, f"Method not found: {request.method} {request.url.path}")

    return [
        Route("/{version}/models/{target}", model_method, methods=["POST"]),
        Route("/{path:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]


def _unsigned_call(contents: list[Any]) -> tuple[int, str] | None:
    """The refusal of a current turn whose model step's function call lacks its signature, if any."""
    users = [i for i, c in enumerate(contents) if isinstance(c, dict) and c.get("role", "user") == "user" and _text(c)]
    start = users[-1] + 1 if users else 0
    for position, content in enumerate(contents[start:], start):
        if not isinstance(content, dict) or content.get("role") != "model":
            continue
        calls = [p for p in content.get("parts") or [] if isinstance(p, dict) and "functionCall" in p]
        if not calls:
            continue
        signature = calls[0].get("thoughtSignature")
        try:
            # Proto JSON's bytes: base64, in either alphabet.
            valid = isinstance(signature, str) and base64.b64decode(
                signature.replace("-", "+").replace("_", "/"), validate=True
            ).startswith(SIGNATURE_PREFIX)
        except ValueError:
            valid = False
        if not valid:
            name = (calls[0]["functionCall"] or {}).get("name", "")
            return 400, (
                "Function call is missing a thought_signature in functionCall parts. This is required for tools "
                "to work correctly, and missing thought_signature may lead to degraded model performance. "
                f"Additional data, function call `default_api:{name}` , position {position + 1}. Please refer to "
                "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
            )
    return None


def _images(content: object) -> int:
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        return 0
    return sum(1 for p in parts if isinstance(p, dict) and ("inlineData" in p or "fileData" in p))


def _tool_results(content: object) -> list[str]:
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        return []
    found = [
        p["functionResponse"] for p in parts if isinstance(p, dict) and isinstance(p.get("functionResponse"), dict)
    ]
    return [json.dumps(f.get("response")) for f in found]


class _Candidate:
    def __init__(self, content: str, calls: list[dict[str, Any]], finish: str) -> None:
        self.content = content
        self.calls = calls
        self.finish = finish
        self.tokens = text.count_tokens(content, *(json.dumps(c["args"]) for c in calls))


class _Asked:
    """What a request asks for beyond a text answer: function declarations, a JSON answer, candidates, stops."""

    def __init__(self, config: dict[str, Any], tools: dict[str, Any], mode: str, allowed: list[str]) -> None:
        self.tools = tools
        self.mode = mode
        self.allowed = allowed
        self.json = config.get("responseMimeType") == "application/json"
        self.schema = config.get("responseJsonSchema") or config.get("responseSchema")
        self.n = config.get("candidateCount") or 1
        self.stop = [s for s in config.get("stopSequences") or [] if isinstance(s, str)]

    @classmethod
    def read(cls, body: dict[str, Any], config: dict[str, Any]) -> _Asked | Response:
        tools: dict[str, Any] = {}
        for tool in body.get("tools") or []:
            for declaration in (tool or {}).get("functionDeclarations") or []:
                if not isinstance(declaration, dict) or not isinstance(declaration.get("name"), str):
                    return error(
                        400, "* GenerateContentRequest.tools[0].function_declarations[0].name: Name cannot be empty."
                    )
                # Proto JSON takes a field's original name too, and google-genai sends this one so.
                schema = declaration.get("parametersJsonSchema") or declaration.get("parameters_json_schema")
                tools[declaration["name"]] = schema or declaration.get("parameters")
        calling = ((body.get("toolConfig") or {}).get("functionCallingConfig")) or {}
        mode = calling.get("mode", "AUTO")
        allowed = calling.get("allowedFunctionNames") or []
        if mode not in ("AUTO", "ANY", "NONE", "VALIDATED"):
            return error(400, f"Invalid value at 'tool_config.function_calling_config.mode' ({mode})")
        if unknown := [a for a in allowed if a not in tools]:
            return error(
                400,
                "* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: "
                f"{unknown[0]} is not declared",
            )
        n = config.get("candidateCount") or 1
        if not isinstance(n, int) or not 1 <= n <= 8:
            return error(400, "* GenerateContentRequest.generation_config.candidate_count: must be between 1 and 8")
        return cls(config, tools, mode, allowed)

    def candidate(self, index: int, prompt: str, contents: list[Any], images: int, limit: int | None) -> _Candidate:
        results = _tool_results(contents[-1]) if contents else []
        if self.tools and self.mode != "NONE" and (self.mode == "ANY" or not results):
            name = (self.allowed or list(self.tools))[0]
            return _Candidate("", [{"name": name, "args": json.loads(structured.arguments(self.tools[name]))}], "STOP")
        words = (
            structured.after_tool("Gemini", results)
            if results
            else structured.seen(text.answer("Gemini", prompt), images)
        )
        words = structured.choice_text(words, index)
        if self.json:
            words = json.dumps(structured.instance(self.schema) if self.schema else {"answer": words})
        words, stopped = structured.cut_at_stop(words, self.stop)
        answer, cut = text.truncate(words, limit)
        return _Candidate(answer, [], "MAX_TOKENS" if cut and not stopped else "STOP")


class _Reply:
    """Builds GenerateContentResponse bodies for one answer (its candidates)."""

    def __init__(self, model: str, prompt_tokens: int, candidates: list[_Candidate], *, signs: bool) -> None:
        self.model = model
        self.prompt_tokens = prompt_tokens
        self.candidates = candidates
        self.signs = signs
        self.response_id = uuid.uuid4().hex[:22]

    def _body(self, candidates: list[dict[str, Any]], answer_tokens: int) -> dict[str, Any]:
        return {
            "candidates": candidates,
            "usageMetadata": {
                "promptTokenCount": self.prompt_tokens,
                "candidatesTokenCount": answer_tokens,
                "totalTokenCount": self.prompt_tokens + answer_tokens,
            },
            "modelVersion": self.model,
            "responseId": self.response_id,
        }

    @staticmethod
    def _candidate(index: int, parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": index}
        if finish:
            candidate["finishReason"] = finish
        return candidate

    def _parts(self, candidate: _Candidate) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = [{"text": candidate.content}] if candidate.content else []
        return parts + self._calls(candidate)

    def _calls(self, candidate: _Candidate) -> list[dict[str, Any]]:
        """The candidate's function calls; a thinking model signs the first."""
        calls: list[dict[str, Any]] = [{"functionCall": call} for call in candidate.calls]
        if calls and self.signs:
            calls[0]["thoughtSignature"] = base64.b64encode(SIGNATURE_PREFIX + os.urandom(96)).decode()
        return calls

    def whole(self) -> dict[str, Any]:
        listed = [self._candidate(i, self._parts(c), c.finish) for i, c in enumerate(self.candidates)]
        return self._body(listed, sum(c.tokens for c in self.candidates))

    def all_chunks(self) -> list[dict[str, Any]]:
        """Each candidate's text word by word, its function calls whole in its last chunk; one candidate after
        the other."""
        out = []
        so_far = 0
        for index, candidate in enumerate(self.candidates):
            pieces = text.chunks(candidate.content) if candidate.content else []
            for i, piece in enumerate(pieces):
                so_far += text.count_tokens(piece)
                last = i == len(pieces) - 1 and not candidate.calls
                out.append(
                    self._body([self._candidate(index, [{"text": piece}], candidate.finish if last else None)], so_far)
                )
            if candidate.calls:
                so_far += sum(text.count_tokens(json.dumps(c["args"])) for c in candidate.calls)
                out.append(self._body([self._candidate(index, self._calls(candidate), candidate.finish)], so_far))
        return out

    async def events(self, delay: float) -> AsyncIterator[bytes]:
        for i, chunk in enumerate(self.all_chunks()):
            if i:
                await asyncio.sleep(delay)
            yield sse_event(chunk, linesep="\r\n")
