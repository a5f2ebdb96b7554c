"""A request's JSON body, decoded once.

The prompt-limit middleware decodes the body of every chat and image request to count its
prompt. It leaves the bytes and the decoded value in the request state, and routes of
`ParsedBodyRoute` hand them to FastAPI, which would otherwise read and decode the same body
again (FastAPI reads `await request.body()` and `await request.json()`, which a Starlette
Request answers from these two attributes once they are set). A body that is not JSON is
left alone, so FastAPI reports it exactly as before; the idempotency fingerprint reuses the
decoded value too.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.types import Scope

_KEY = "json_body"
NOT_DECODED: Any = object()


def remember(scope: Scope, body: bytes, value: Any) -> None:
    scope.setdefault("state", {})[_KEY] = (body, value)


def decoded(scope: Scope, body: bytes) -> Any:
    """The decoded value of exactly these body bytes, if a middleware decoded them; else NOT_DECODED."""
    found = scope.get("state", {}).get(_KEY)
    return found[1] if found is not None and found[0] == body else NOT_DECODED


class ParsedBodyRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            found = request.scope.get("state", {}).get(_KEY)
            if found is not None:
                request._body, request._json = found
            return await handler(request)

        return route
