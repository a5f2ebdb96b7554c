"""`Idempotency-Key` on the POSTs that cost credits (draft-ietf-httpapi-idempotency-key-header).

A request with a key claims it in Redis (scoped to the user) before it runs; the response
is then kept for IDEMPOTENCY_TTL_S and replayed, byte for byte with `Idempotent-Replayed:
true`, to every retry with the same key. The same key with another body (or path) is 409:
the key is taken (the draft suggests 422, but the request itself is valid, and 422 here means
an invalid request). A retry must be as valid as the first request: one whose X-Request-Timeout
the route would refuse is refused (422), not answered with the first one's response.
A retry that arrives while the first is still running waits for its result (until its own
deadline; after that 409), so a request is never run, nor charged, twice.

Kept: every response whose work may have happened (2xx, 500, 504: the outcome is unknown
to the client, so a retry must not redo it). Not kept, freeing the key for a retry: 4xx
(refused before or instead of any charge: bad input, 402, 429, ...) and 502/503 (the
provider or a service failed and the reservation was released).

A claim is a lease, renewed while the request runs; if its gateway dies the key frees
after LEASE_S. With Redis unreachable, a request carrying a key is refused with 503 rather
than run without the guarantee; requests without a key are unaffected.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.contracts import Actor
from common.errors import (
    BadRequest,
    Conflict,
    InternalError,
    PlatformError,
    RateLimited,
    ServiceUnavailable,
    ValidationFailed,
)
from common.redis_client import REDIS_ERRORS
from gateway.http.body import header, read_body, replaying
from gateway.http.deadlines import deadline_from
from gateway.http.errors import error_response, send_error
from gateway.http.json_body import NOT_DECODED, decoded, loads
from gateway.idempotency.store import LEASE_S, IdempotencyStore, StoredResponse

log = logging.getLogger(__name__)

PATHS = frozenset(
    {
        "/v1/chat",
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/images",
        "/v1/images/generations",
        "/v1/admin/credits/grants",
    }
)
KEY_HEADER = b"idempotency-key"
_WELL_FORMED = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, as a header value allows
# Their X-Request-Timeout bounds an image job (IMAGE_JOB_TIMEOUT_S), not the request.
IMAGE_JOB_PATHS = frozenset({"/v1/images", "/v1/images/generations"})
MAX_KEPT_BODY = 1024 * 1024
_POLL_S = (0.02, 0.25)  # first and longest pause between looks at a running first request


def fingerprint(method: str, path: str, query: bytes, body: bytes, value: Any = NOT_DECODED) -> str:
    """What makes two requests the same: method, path, query and the body (JSON compared by
    value; `value` is the body decoded already, if it was)."""
    try:
        decoded = loads(body) if value is NOT_DECODED else value
        canonical = json.dumps(decoded, sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    digest = hashlib.sha256(f"{method}\n{path}\n".encode() + query + b"\n" + canonical)
    return digest.hexdigest()


def replayed_later(status: int) -> bool:
    """Whether a response is kept for replays (see the module docstring)."""
    return not (400 <= status < 500 or status in (502, 503))


class IdempotencyMiddleware:
    """Runs after authentication (keys are per user) and the body limit."""

    def __init__(self, app: ASGIApp, *, default_wait_s: float, max_wait_s: float, image_job_s: float) -> None:
        self.app = app
        self.default_wait_s = default_wait_s
        self.max_wait_s = max_wait_s
        self.image_job_s = image_job_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = header(scope, KEY_HEADER) if scope["type"] == "http" and scope["method"] == "POST" else None
        actor: Actor | None = scope.get("state", {}).get("actor") if key is not None else None
        if key is None or actor is None or scope["path"] not in PATHS:
            await self.app(scope, receive, send)  # no key, or no user: the route decides (401)
            return
        if not _WELL_FORMED.match(key):
            error = BadRequest("Idempotency-Key must be 1 to 255 visible ASCII characters")
            await send_error(scope, receive, send, error)
            return
        try:
            wait_s = self._wait_s(scope)
        except ValidationFailed as exc:
            await send_error(scope, receive, send, exc)
            return
        store: IdempotencyStore = scope["app"].state.idempotency
        body, ended = await read_body(receive)
        fp = fingerprint(scope["method"], scope["path"], scope.get("query_string", b""), body, decoded(scope, body))
        record, owner = store.record(actor.id, key), uuid.uuid4().hex
        try:
            first = await self._first(store, record, fp, owner, deadline=time.monotonic() + wait_s)
        except REDIS_ERRORS as exc:
            log.warning("idempotency store unreachable", extra={"error": repr(exc)})
            await send_error(scope, receive, send, ServiceUnavailable("idempotency keys cannot be honoured now"))
        except Conflict as exc:
            await send_error(scope, receive, send, exc, {"Retry-After": "1"})
        except RateLimited as exc:
            await send_error(scope, receive, send, exc, {"Retry-After": str(exc.extra["retry_after"])})
        else:
            if first is None:
                await self._run(scope, replaying(body, ended, receive), send, store, record, owner)
            else:
                await _send_stored(first, send)

    async def _first(
        self, store: IdempotencyStore, record: str, fp: str, owner: str, *, deadline: float
    ) -> StoredResponse | None:
        """None once this request owns the key; else the first request's kept response (waiting for it)."""
        pause = _POLL_S[0]
        while True:
            holder = await store.claim(record, fp, owner)
            if holder is None:
                return None
            state, held_fp = holder
            if held_fp != fp:
                raise Conflict("this Idempotency-Key was used with a different request")
            if state == "done" and (first := await store.replay(record)) is not None:
                return first
            if time.monotonic() + pause > deadline:
                raise Conflict("a request with this Idempotency-Key is still running; retry later")
            await asyncio.sleep(pause)
            pause = min(pause * 2, _POLL_S[1])

    async def _run(
        self, scope: Scope, receive: Receive, send: Send, store: IdempotencyStore, record: str, owner: str
    ) -> None:
        status = 500
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []
        size = 0

        async def capture(message: Message) -> None:
            nonlocal status, headers, size
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-length"]
            elif message["type"] == "http.response.body" and size <= MAX_KEPT_BODY:
                chunk = message.get("body", b"")
                size += len(chunk)
                chunks.append(chunk)
            await send(message)

        renewing = asyncio.create_task(_keep_renewing(store, record, owner))
        try:
            await self.app(scope, receive, capture)
        except Exception:
            # The route failed unexpectedly, perhaps after its work was sent: keep a 500 so a retry cannot redo it.
            await _finish(store, record, owner, _problem_response(InternalError(), scope))
            raise
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
        if not replayed_later(status):
            try:
                await store.release(record, owner)
            except REDIS_ERRORS as exc:
                log.warning("idempotency key not freed; it frees when its lease ends", extra={"error": repr(exc)})
        elif size > MAX_KEPT_BODY:
            log.warning("response too large to keep for replays", extra={"bytes": size})
            too_large = Conflict("the first response to this Idempotency-Key was too large to keep; it was sent once")
            await _finish(store, record, owner, _problem_response(too_large, scope))
        else:
            await _finish(store, record, owner, StoredResponse(status, headers, b"".join(chunks)))

    def _wait_s(self, scope: Scope) -> float:
        """How long a retry waits for a running first request: its own X-Request-Timeout, checked
        as its route checks it (ValidationFailed), or the default."""
        wanted = header(scope, b"x-request-timeout")
        image_job = scope["path"] in IMAGE_JOB_PATHS
        most = self.image_job_s if image_job else self.max_wait_s
        context = " for image jobs" if image_job else ""
        deadline_from(wanted, default_s=self.default_wait_s, max_s=most, context=context)
        seconds = float(wanted) if wanted is not None else self.default_wait_s
        return seconds if seconds <= self.max_wait_s else self.default_wait_s


async def _keep_renewing(store: IdempotencyStore, record: str, owner: str) -> None:
    while True:
        await asyncio.sleep(LEASE_S / 3)
        try:
            await store.renew(record, owner)
        except REDIS_ERRORS as exc:
            log.warning("idempotency lease not renewed", extra={"error": repr(exc)})


async def _finish(store: IdempotencyStore, record: str, owner: str, response: StoredResponse) -> None:
    try:
        if not await store.complete(record, owner, response):
            log.warning("idempotency lease lost before the response was kept")
    except REDIS_ERRORS as exc:
        log.warning("response not kept for replays", extra={"error": repr(exc)})


def _problem_response(error: PlatformError, scope: Scope) -> StoredResponse:
    response = error_response(scope, error)
    content_type = response.headers["content-type"].encode()
    return StoredResponse(error.status, [(b"content-type", content_type)], bytes(response.body))


async def _send_stored(response: StoredResponse, send: Send) -> None:
    headers = [
        *response.headers,
        (b"content-length", str(len(response.body)).encode()),
        (b"idempotent-replayed", b"true"),
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
