"""The outermost gateway middleware: request id, trace span, log context, security headers and
the access log of every request."""

from __future__ import annotations

import logging
import re
import time
import uuid

from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common import telemetry
from common.logs import bound
from gateway.http.security_headers import SecurityHeaders
from gateway.metrics import HTTP_IN_FLIGHT, HTTP_SECONDS
from gateway.ratelimit.policy import OUTCOMES, RATELIMIT_FIELDS, ratelimit_fields

REQUEST_ID_HEADER = b"x-request-id"
_WELL_FORMED = re.compile(rb"^[A-Za-z0-9._:-]{8,128}$")
tracer = trace.get_tracer("gateway.http")
log = logging.getLogger("gateway.access")


def route_template(scope: Scope) -> str:
    """The matched route's template (`/v1/images/{image_id}`), never the raw path, so metric
    labels stay few; unmatched paths share one label."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """A well-formed client X-Request-ID is kept; anything else is replaced."""
    for name, value in headers:
        if name.lower() == REQUEST_ID_HEADER and _WELL_FORMED.match(value):
            return value.decode()
    return uuid.uuid4().hex


def trace_carrier(headers: list[tuple[bytes, bytes]], fields: frozenset[bytes]) -> dict[str, list[str]]:
    """The request's trace-context headers (W3C `traceparent`, `tracestate`, `baggage`), as the
    propagator reads them; empty when the client sent none."""
    carrier: dict[str, list[str]] = {}
    for name, value in headers:
        key = name.lower()
        if key in fields:
            carrier.setdefault(key.decode(), []).append(value.decode("latin-1"))
    if "baggage" in carrier:  # the baggage propagator reads one value
        carrier["baggage"] = [",".join(carrier["baggage"])]
    return carrier


def access_level(status: int, elapsed_s: float, slow_s: float) -> int:
    """How loudly a finished request is logged: server errors as warnings, client errors and
    slow requests as info, and the rest (fast successes, nearly every request) at debug, so
    the hot path writes no log line."""
    if status >= 500:
        return logging.WARNING
    if status >= 400 or elapsed_s >= slow_s:
        return logging.INFO
    return logging.DEBUG


class RequestContextMiddleware:
    """Gives each request an id (echoed as X-Request-ID), a server span (continuing the
    client's trace when it sends a `traceparent`) and log context; writes the security headers
    and the rate-limit fields (outcomes from `ratelimit/middleware.py`) on its response in one pass; and
    logs it when it ends (see `access_level`) with its request id. This is the gateway's one
    server span: FastAPI's own request telemetry is off (see `app.py`)."""

    def __init__(self, app: ASGIApp, *, slow_request_s: float = 1.0, hsts: bool = False) -> None:
        self.app = app
        self.slow_request_s = slow_request_s
        self.security = SecurityHeaders(hsts=hsts)
        self._trace_fields = frozenset(f.encode() for f in propagate.get_global_textmap().fields)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope["headers"])
        state = scope.setdefault("state", {})
        state["request_id"] = request_id

        status = 500
        started = time.perf_counter()
        security = self.security.for_path(scope["path"])

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                limits = ratelimit_fields(state.get(OUTCOMES, []))
                ours = RATELIMIT_FIELDS | {REQUEST_ID_HEADER} if limits else {REQUEST_ID_HEADER}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in ours]
                headers = SecurityHeaders.add(headers, security)
                message["headers"] = [*headers, *limits, (REQUEST_ID_HEADER, request_id.encode())]
                span.set_attribute("http.response.status_code", message["status"])
            await send(message)

        name = f"{scope['method']} {scope['path']}"
        attributes = {
            "http.request.method": scope["method"],
            "url.path": scope["path"],
            "aisaas.request_id": request_id,
        }
        carrier = trace_carrier(scope["headers"], self._trace_fields)
        incoming = context.attach(propagate.extract(carrier)) if carrier else None
        try:
            with (
                telemetry.span(tracer, name, kind=SpanKind.SERVER, attributes=attributes) as span,
                bound(request_id=request_id),
            ):
                HTTP_IN_FLIGHT.inc()
                try:
                    await self.app(scope, receive, send_with_id)
                finally:
                    HTTP_IN_FLIGHT.dec()
                    elapsed = time.perf_counter() - started
                    HTTP_SECONDS.labels(scope["method"], route_template(scope), str(status)).observe(elapsed)
                    level = access_level(status, elapsed, self.slow_request_s)
                    if log.isEnabledFor(level):
                        log.log(
                            level,
                            "request finished",
                            extra={
                                "method": scope["method"],
                                "path": scope["path"],
                                "status": status,
                                "duration_ms": round(elapsed * 1000, 2),
                            },
                        )
        finally:
            if incoming is not None:  # after the span's own context is gone (contexts unwind in order)
                context.detach(incoming)
