"""What the routes answer besides their success, declared once for the OpenAPI document.

Errors are RFC 9457 problem+json everywhere but on the OpenAI-compatible routes, which answer
in OpenAI's error shape (see `openai/errors.py`). A route lists the statuses it can answer
with these shared `responses=` dicts, combined with `|`; `openapi_document.py` adds the headers every
response carries (X-Request-ID, the RateLimit fields) when the document is built.
"""

from __future__ import annotations

from typing import Any

from gateway.http.problems import PROBLEM_JSON

PROBLEM_REF = "#/components/schemas/Problem"
OPENAI_ERROR_REF = "#/components/schemas/OpenAIError"

FIELD_ERROR: dict[str, Any] = {
    "type": "object",
    "title": "FieldError",
    "required": ["field", "message", "type"],
    "properties": {
        "field": {"type": "string", "description": "Where: `body.messages.0.content`, `header.x-request-timeout`."},
        "message": {"type": "string"},
        "type": {"type": "string", "description": "Machine-readable kind, e.g. `missing`, `string_too_long`."},
    },
}
PROBLEM: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details; further members carry facts about the error (`balance`, `price`, ...).",
    "required": ["type", "title", "status", "detail", "request_id"],
    "properties": {
        "type": {"type": "string", "description": "`urn:aisaas:problem:<code>`, stable per kind of error."},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "What went wrong this time."},
        "request_id": {"type": "string", "description": "The X-Request-ID of the request: quote it to support."},
        "instance": {"type": "string", "description": "The request path."},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
    },
    "additionalProperties": True,
}
OPENAI_ERROR: dict[str, Any] = {
    "type": "object",
    "title": "OpenAIError",
    "description": "OpenAI's error object, which OpenAI clients parse, with the request id added.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code", "request_id"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string", "examples": ["invalid_request_error", "insufficient_quota"]},
                "param": {"type": ["string", "null"], "description": "The request field at fault, if one is."},
                "code": {"type": "string", "examples": ["validation_failed"]},
                "request_id": {"type": "string"},
            },
        }
    },
}
SCHEMAS = {"FieldError": FIELD_ERROR, "Problem": PROBLEM, "OpenAIError": OPENAI_ERROR}

_INT = {"type": "integer", "minimum": 0}
RETRY_AFTER = {"description": "Seconds to wait before trying again.", "required": True, "schema": _INT}
WWW_AUTHENTICATE = {"description": "The scheme to authenticate with.", "required": True, "schema": {"type": "string"}}
LOCATION = {"description": "Where to follow the job.", "required": True, "schema": {"type": "string"}}

_WHY = {
    400: "Bad request (a malformed Idempotency-Key; on OpenAI routes, any invalid request).",
    401: "No valid bearer token.",
    402: "Not enough credits for this request.",
    403: "The token's role may not do this.",
    404: "No such resource (or not yours), or no such model.",
    409: "Conflicts with another request (the same Idempotency-Key still running).",
    413: "The body (MAX_BODY_BYTES) or the prompt (MAX_PROMPT_CHARS) is too large.",
    422: "Invalid request: the `errors` member names each field at fault.",
    429: "A rate limit is used up; Retry-After says when to try again.",
    500: "Unexpected error (logged with the request id).",
    502: "The AI provider or the image store failed; nothing was charged.",
    503: "A service the gateway needs is unavailable.",
    504: "No answer before the request's deadline (X-Request-Timeout).",
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": WWW_AUTHENTICATE},
    429: {"Retry-After": RETRY_AFTER},
}


def _errors(statuses: tuple[int, ...], media_type: str, ref: str) -> dict[int | str, dict[str, Any]]:
    return {
        status: {
            "description": _WHY[status],
            "content": {media_type: {"schema": {"$ref": ref}}},
            **({"headers": _HEADERS[status]} if status in _HEADERS else {}),
        }
        for status in statuses
    }


def event_stream(
    description: str, *, events: list[str] | None = None, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A 200's `text/event-stream` content: the schema of each event (its `event` name, its
    `data`, JSON of the `data` schema when given; `id` and `retry` as SSE defines them)."""
    payload: dict[str, Any] = {"type": "string"}
    if data is not None:
        payload |= {"contentMediaType": "application/json", "contentSchema": data}
    event: dict[str, Any] = {"type": "object", "description": description}
    event["properties"] = {
        "event": {"type": "string", **({"enum": events} if events else {})},
        "data": payload,
        "id": {"type": "string"},
        "retry": {"type": "integer", "minimum": 0},
    }
    return {"text/event-stream": {"schema": event}}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """These statuses, each a problem+json document."""
    return _errors(statuses, PROBLEM_JSON, PROBLEM_REF)


def openai_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """These statuses, each an OpenAI error object (the OpenAI-compatible routes)."""
    return _errors(statuses, "application/json", OPENAI_ERROR_REF)


# Every route but the health probes: the per-IP rate limit, the limiter being down, the unexpected.
_SERVED = (429, 500, 503)
# ... signed in, with a deadline (X-Request-Timeout, 422) on a request/reply to a service (504).
_CALLER = (*_SERVED, 401, 422, 504)
# ... with a JSON body, and (on the POSTs that spend credits) an Idempotency-Key.
_BODY = (413, 422)
_IDEMPOTENT = (400, 409)

PROBE = problems(500)
NOT_FOUND = problems(404)
FORBIDDEN = problems(403)
UPSTREAM = problems(502)
CALLER = problems(*_CALLER)
BODY = problems(*_CALLER, *_BODY)  # a route that reads a JSON body
ADMIN = problems(*_CALLER, 403)
GRANT = problems(*_CALLER, 403, 404, *_BODY, *_IDEMPOTENT)
# The user directory (MongoDB) answers these, not a service over the broker: no deadline.
USERS = problems(*_SERVED, 401, 403, 422)
ME = problems(*_SERVED, 401)
SET_ROLE = problems(*_SERVED, 401, 403, 404, *_BODY)
# ... and a model that is not offered (404, as OpenAI answers it).
SPENDING = problems(*_CALLER, *_BODY, *_IDEMPOTENT, 402, 404, 502)
WEBHOOK = problems(*_SERVED, 401, *_BODY, 504)
OPENAI = openai_errors(*_CALLER)
OPENAI_NOT_FOUND = openai_errors(404)
OPENAI_SPENDING = openai_errors(*_CALLER, *_BODY, *_IDEMPOTENT, 402, 404, 502)
