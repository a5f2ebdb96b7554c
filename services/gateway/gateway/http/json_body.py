"""A request's JSON body, decoded once and never nested too deep.

The prompt-limit middleware decodes the body of every chat and image request to count its
prompt. It leaves the bytes and the decoded value in the request state, and routes of
`ParsedBodyRoute` hand them to FastAPI, which would otherwise read and decode the same body
again (FastAPI reads `await request.body()` and `await request.json()`, which a Starlette
Request answers from these two attributes once they are set). A body that is not JSON is
left alone, so FastAPI reports it exactly as before; the idempotency fingerprint reuses the
decoded value too.

Every body is decoded by `loads`, which refuses nesting deeper than MAX_DEPTH: the standard
decoder recurses per level, so 100,000 `[` would raise RecursionError (a 500), and a value
just under its limit would blow the stack later, in validation or re-encoding. A route of
`ParsedBodyRoute` reports such a body as invalid JSON: 422 (problem+json, or OpenAI's shape
on the OpenAI-compatible routes), as it does a body that is not text in any JSON encoding.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from itertools import accumulate
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.types import Scope

_KEY = "json_body"
NOT_DECODED: Any = object()
MAX_DEPTH = 64  # OpenAI-style bodies, JSON schemas included, stay far below this

_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


class TooDeep(ValueError):
    def __init__(self) -> None:
        super().__init__(f"JSON nested deeper than {MAX_DEPTH} levels")


def depth(text: str) -> int:
    """Deepest nesting of arrays and objects in a JSON text (brackets inside strings do not count)."""
    brackets = _NOT_BRACKETS.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def loads(body: bytes | str) -> Any:
    """`json.loads`, refusing nesting deeper than MAX_DEPTH with TooDeep (a ValueError)."""
    text = body.decode(json.detect_encoding(body), "surrogatepass") if isinstance(body, bytes) else body
    # Fewer brackets than the limit cannot nest past it: ordinary bodies skip the scan.
    if text.count("[") + text.count("{") > MAX_DEPTH and depth(text) > MAX_DEPTH:
        raise TooDeep()
    try:
        return json.loads(text)
    except RecursionError:  # unreachable after the scan; kept so a deep body is never a 500
        raise TooDeep() from None


def remember(scope: Scope, body: bytes, value: Any) -> None:
    scope.setdefault("state", {})[_KEY] = (body, value)


def decoded(scope: Scope, body: bytes) -> Any:
    """The decoded value of exactly these body bytes, if a middleware decoded them; else NOT_DECODED."""
    found = scope.get("state", {}).get(_KEY)
    return found[1] if found is not None and found[0] == body else NOT_DECODED


class ParsedBodyRoute(APIRoute):
    """A route whose JSON body is decoded by `loads`: once, and never too deep."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_body = self.body_field is not None

        async def route(request: Request) -> Response:
            found = request.scope.get("state", {}).get(_KEY)
            if found is not None:
                request._body, request._json = found
            elif takes_body and (body := await request.body()):
                _decode_into(request, body)
            return await handler(request)

        return route


def _decode_into(request: Request, body: bytes) -> None:
    try:
        request._json = loads(body)
    except json.JSONDecodeError:
        pass  # not JSON: FastAPI decodes it again and reports it as it always does (422 json_invalid)
    except ValueError as exc:  # too deep, or bytes no JSON encoding decodes (which FastAPI answers 400)
        error = {"type": "json_invalid", "loc": ("body",), "msg": str(exc), "input": {}, "ctx": {"error": str(exc)}}
        raise RequestValidationError([error], body=body) from exc
