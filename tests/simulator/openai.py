"""OpenAI's REST API as the `openai` SDK speaks it: chat completions (plain and SSE), image generation, models.

Mounted at `/openai`, so the SDK's base URL is `http://HOST:PORT/openai/v1`. Any non-empty bearer key is
accepted. Endpoint names in the call log: `chat.completions`, `images.generations`, `models.list`,
`models.retrieve`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tests.simulator import images, structured, text
from tests.simulator.wire import bearer, json_body, origin, sse, sse_event

if TYPE_CHECKING:
    from tests.simulator.app import Simulator

PROVIDER = "openai"
MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1", "dall-e-2", "dall-e-3", "gpt-image-1")
_ERROR_KIND = {
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


def error(status: int, message: str, *, param: str | None = None, code: str | None = None) -> JSONResponse:
    """`{"error": {"message", "type", "param", "code"}}` with the given status, as OpenAI replies."""
    kind, default_code = _ERROR_KIND.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    body = {"error": {"message": message, "type": kind, "param": param, "code": code or default_code}}
    return JSONResponse(body, status_code=status)


def _unauthorized(request: Request) -> Response | None:
    if bearer(request):
        return None
    return error(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header "
        "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
    )


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def routes(sim: Simulator) -> list[BaseRoute]:
    async def guard(
        request: Request, endpoint: str, *, model: str | None = None, stream: bool = False
    ) -> Response | None:
        return await sim.enter(request, PROVIDER, endpoint, error=error, model=model, stream=stream) or _unauthorized(
            request
        )

    async def chat_completions(request: Request) -> Response:
        body = await json_body(request, error)
        if isinstance(body, Response):
            return body
        model, stream = body.get("model"), bool(body.get("stream"))
        if reply := await guard(request, "chat.completions", model=model, stream=stream):
            return reply
        messages = body.get("messages")
        if not isinstance(model, str) or not model:
            return error(400, "you must provide a model parameter", param="model")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            return error(400, "Invalid 'messages': expected a non-empty array of message objects.", param="messages")
        request.state.sim_call["messages"] = [{"role": m.get("role"), "text": _message_text(m)} for m in messages]
        asked = _Asked.read(body)
        if isinstance(asked, Response):
            return asked
        user = [m for m in messages if m.get("role") == "user"]
        prompt = _message_text(user[-1]) if user else ""
        images = sum(_images(m) for m in messages)
        request.state.sim_call["images"] = images
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        choices = [
            asked.choice(i, prompt, messages, images, limit if isinstance(limit, int) else None) for i in range(asked.n)
        ]
        prompt_tokens = text.count_tokens(*(_message_text(m) for m in messages)) + sum(
            _image_tokens(m) for m in messages
        )
        usage = _usage(prompt_tokens, sum(c.tokens for c in choices))
        head = {
            "id": f"chatcmpl-sim{uuid.uuid4().hex[:24]}",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_simulator",
        }
        if not stream:
            listed = [
                {"index": i, "message": c.message(), "logprobs": None, "finish_reason": c.finish}
                for i, c in enumerate(choices)
            ]
            return JSONResponse({**head, "object": "chat.completion", "choices": listed, "usage": usage})
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        delay = sim.stream_delay(PROVIDER)
        return sse(_chunks({**head, "object": "chat.completion.chunk"}, choices, usage, include_usage, delay))

    async def image_generations(request: Request) -> Response:
        body = await json_body(request, error)
        if isinstance(body, Response):
            return body
        model = str(body.get("model") or "dall-e-2")
        if reply := await guard(request, "images.generations", model=model):
            return reply
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return error(
                400, "Missing required parameter: 'prompt'.", param="prompt", code="missing_required_parameter"
            )
        n = body.get("n") or 1
        if not isinstance(n, int) or not 1 <= n <= 10:
            return error(400, "Invalid 'n': must be between 1 and 10.", param="n")
        fmt = body.get("response_format") or "url"
        if fmt not in ("url", "b64_json"):
            return error(
                400, f"Invalid value: '{fmt}'. Supported values are: 'url' and 'b64_json'.", param="response_format"
            )
        if model.startswith("gpt-image"):
            fmt = "b64_json"  # these models only ever answer with base64
        png = images.render_png(prompt, images.parse_size(body.get("size"), (1024, 1024)))
        data = []
        for _ in range(n):
            if fmt == "b64_json":
                data.append({"b64_json": base64.b64encode(png).decode(), "revised_prompt": prompt})
                continue
            file_id = f"img-{uuid.uuid4().hex[:20]}"
            with sim.lock:
                sim.files[file_id] = png
            data.append({"url": f"{origin(request)}/openai/files/{file_id}.png", "revised_prompt": prompt})
        return JSONResponse({"created": int(time.time()), "data": data})

    async def list_models(request: Request) -> Response:
        if reply := await guard(request, "models.list"):
            return reply
        return JSONResponse({"object": "list", "data": [_model(m) for m in MODELS]})

    async def retrieve_model(request: Request) -> Response:
        model = request.path_params["model"]
        if reply := await guard(request, "models.retrieve", model=model):
            return reply
        if model not in MODELS:
            return error(404, f"The model '{model}' does not exist", param="model", code="model_not_found")
        return JSONResponse(_model(model))

    async def file(request: Request) -> Response:
        with sim.lock:
            png = sim.files.get(request.path_params["file_id"])
        if png is None:
            return error(404, "No such file.")
        return Response(png, media_type="image/png")

    async def not_found(request: Request) -> Response:
        return error(404, f"Invalid URL ({request.method} {request.url.path})")

    return [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/images/generations", image_generations, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model}", retrieve_model, methods=["GET"]),
        Route("/files/{file_id}.png", file, methods=["GET"]),
        Route("/{path:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 1_700_000_000, "owned_by": "simulator"}


async def _chunks(
    head: dict[str, Any], choices: list[_Choice], usage: dict[str, int], include_usage: bool, delay: float
) -> AsyncIterator[bytes]:
    extra = {"usage": None} if include_usage else {}

    def chunk(index: int, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return sse_event({**head, "choices": [choice], **extra})

    for index, choice in enumerate(choices):  # one choice after the other, as OpenAI may interleave them
        yield chunk(index, {"role": "assistant", "content": "", "refusal": None})
        for piece in text.chunks(choice.content) if choice.content else ():
            await asyncio.sleep(delay)
            yield chunk(index, {"content": piece})
        for n, call in enumerate(choice.calls):
            start = {
                "index": n,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": ""},
            }
            yield chunk(index, {"tool_calls": [start]})
            for piece in text.chunks(call["arguments"]):
                await asyncio.sleep(delay)
                yield chunk(index, {"tool_calls": [{"index": n, "function": {"arguments": piece}}]})
        yield chunk(index, {}, choice.finish)
    if include_usage:
        yield sse_event({**head, "choices": [], "usage": usage})
    yield sse_event("[DONE]")


def _images(message: dict[str, Any]) -> int:
    content = message.get("content")
    if not isinstance(content, list):
        return 0
    return sum(1 for p in content if isinstance(p, dict) and p.get("type") == "image_url")


def _image_tokens(message: dict[str, Any]) -> int:
    content = message.get("content")
    if not isinstance(content, list):
        return 0
    parts = [p.get("image_url") for p in content if isinstance(p, dict) and p.get("type") == "image_url"]
    return sum(structured.OPENAI_IMAGE_TOKENS.get(str((p or {}).get("detail", "auto")), 765) for p in parts)


class _Choice:
    def __init__(self, content: str, calls: list[dict[str, str]], finish: str) -> None:
        self.content = content
        self.calls = calls
        self.finish = finish
        self.tokens = text.count_tokens(content, *(c["arguments"] for c in calls))

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": self.content if self.content or not self.calls else None,
            "refusal": None,
            "annotations": [],
        }
        if self.calls:
            message["tool_calls"] = [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in self.calls
            ]
        return message


class _Asked:
    """What a request asks for beyond a text answer: tools, a response format, choices, stop sequences."""

    def __init__(self, body: dict[str, Any], tools: dict[str, Any], forced: str | None, mode: str) -> None:
        self.tools = tools
        self.forced = forced
        self.mode = mode
        fmt = body.get("response_format")
        self.format = fmt if isinstance(fmt, dict) else {}
        self.n = body.get("n") or 1
        stop = body.get("stop")
        self.stop = [stop] if isinstance(stop, str) else [s for s in stop or [] if isinstance(s, str)]

    @classmethod
    def read(cls, body: dict[str, Any]) -> _Asked | Response:
        tools: dict[str, Any] = {}
        for tool in body.get("tools") or []:
            function = tool.get("function") if isinstance(tool, dict) else None
            if (
                not isinstance(function, dict)
                or not isinstance(function.get("name"), str)
                or tool.get("type") != "function"
            ):
                return error(
                    400, "Invalid 'tools': each tool needs type 'function' and a function name.", param="tools"
                )
            tools[function["name"]] = function.get("parameters")
        choice = body.get("tool_choice", "auto")
        forced = None
        if isinstance(choice, dict):
            forced, choice = ((choice.get("function") or {}).get("name"), "required")
            if forced not in tools:
                return error(400, f"Invalid 'tool_choice': no tool named '{forced}'.", param="tool_choice")
        if choice not in ("none", "auto", "required"):
            return error(400, "Invalid 'tool_choice'.", param="tool_choice")
        if body.get("tool_choice") is not None and not tools:
            return error(
                400,
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
                param="tool_choice",
            )
        n = body.get("n") or 1
        if not isinstance(n, int) or not 1 <= n <= 128:
            return error(400, "Invalid 'n': must be between 1 and 128.", param="n")
        fmt = body.get("response_format")
        if fmt is not None and (
            not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema")
        ):
            return error(400, "Invalid 'response_format.type'.", param="response_format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            spec = fmt.get("json_schema")
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                return error(
                    400,
                    "Missing required parameter: 'response_format.json_schema.name'.",
                    param="response_format.json_schema.name",
                )
        return cls(body, tools, forced, str(choice))

    def choice(
        self, index: int, prompt: str, messages: list[dict[str, Any]], images: int, limit: int | None
    ) -> _Choice:
        last = messages[-1] if messages else {}
        answered_tool = last.get("role") == "tool"
        if self.tools and self.mode != "none" and (self.mode == "required" or not answered_tool):
            name = self.forced or next(iter(self.tools))
            call = {
                "id": f"call_sim{uuid.uuid4().hex[:20]}",
                "name": name,
                "arguments": structured.arguments(self.tools[name]),
            }
            return _Choice("", [call], "tool_calls")
        if answered_tool:
            results = []
            for m in reversed(messages):
                if m.get("role") != "tool":
                    break
                results.insert(0, _message_text(m))
            words = structured.after_tool("OpenAI", results)
        else:
            words = structured.seen(text.answer("OpenAI", prompt), images)
        words = structured.choice_text(words, index)
        kind = self.format.get("type")
        if kind == "json_object":
            words = json.dumps({"answer": words})
        elif kind == "json_schema":
            words = json.dumps(structured.instance((self.format.get("json_schema") or {}).get("schema") or {}))
        words, stopped = structured.cut_at_stop(words, self.stop)
        answer, cut = text.truncate(words, limit)
        return _Choice(answer, [], "length" if cut and not stopped else "stop")
