"""Replicate's HTTP API as the `replicate` SDK speaks it: predictions created, polled, awaited and canceled.

Mounted at `/replicate`: `replicate.Client(api_token=..., base_url="http://HOST:PORT/replicate")`. A bearer
token must be present; any value is accepted.

A prediction is `starting` for `Simulator.starting_s`, then `processing` for the processing time
(`Simulator.processing_s`, or the `processing_s` knob), then `succeeded` with `output = [URL of a PNG]`
drawn from `input.prompt` and served at `GET /replicate/files/{id}.png` (plain http, so the SDK hands
it back as a `str`, not a `FileOutput`), or `failed` when a `fail_prediction` fault was queued.
`Simulator.output_url` makes the output any URL instead, as a model may; the delivery side also offers
`GET /replicate/redirect?to=URL` (a 302 to it) and `GET /replicate/files/large.png?bytes=N` (a PNG
padded to N bytes, streamed without a Content-Length).

`Prefer: wait` / `Prefer: wait=N` holds the create request until the prediction is done, at most N
seconds (60 by default). Like the real API, a prediction still running when the wait runs out is
reported as `starting` in that reply: `replicate.run()` treats any other status as final and would
return its (empty) output without polling.

Endpoint names in the call log: `predictions.create` (all create routes), `predictions.get`,
`predictions.list`, `predictions.cancel`, `versions.get`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from tests.simulator import images
from tests.simulator.wire import bearer, iso, json_body, now, origin

if TYPE_CHECKING:
    from tests.simulator.app import Simulator

PROVIDER = "replicate"
TERMINAL = ("succeeded", "failed", "canceled")
MAX_WAIT_S = 60
_TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    402: "Payment required",
    403: "Forbidden",
    404: "Not found",
    422: "Input validation failed",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def error(status: int, detail: str) -> JSONResponse:
    """Problem details (RFC 7807), as Replicate replies: `{"title", "detail", "status"}`."""
    title = _TITLES.get(status, "Error")
    return JSONResponse(
        {"title": title, "detail": detail, "status": status}, status_code=status, media_type="application/problem+json"
    )


def version_id(model: str) -> str:
    """A stable 64-hex version id for a model name."""
    return hashlib.sha256(model.encode()).hexdigest()


@dataclass
class Prediction:
    """One prediction; its status is worked out from the clock each time it is looked at."""

    id: str
    model: str
    version: str
    input: dict[str, Any]
    origin: str
    created: float
    starting_s: float
    processing_s: float
    fail: str | None = None
    status: str = "starting"
    started: float | None = None
    completed: float | None = None
    output: Any = None
    error: str | None = None
    logs: str = ""
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # set on cancel, in the server's loop

    @property
    def done_at(self) -> float:
        return self.created + self.starting_s + self.processing_s

    def advance(self, sim: Simulator) -> None:
        """Move the status on to where the clock says it is (thread-safe)."""
        with sim.lock:
            at = now()
            if self.status == "starting" and at >= self.created + self.starting_s:
                self.status, self.started = "processing", self.created + self.starting_s
                self.logs += "Simulated model loaded.\nRunning prediction...\n"
            if self.status == "processing" and at >= self.done_at:
                self._finish(sim)

    def _finish(self, sim: Simulator) -> None:
        self.completed = self.done_at
        if self.fail is not None:
            self.status, self.error = "failed", self.fail
            self.logs += f"Error: {self.fail}\n"
            return
        sim.files[self.id] = images.render_png(str(self.input.get("prompt", "")))
        url = sim.output_url or f"{self.origin}/replicate/files/{{id}}.png"
        self.status, self.output = "succeeded", [url.replace("{id}", self.id)]
        self.logs += "100%|##########| 1/1\nDone.\n"

    def cancel(self) -> None:
        if self.status not in TERMINAL:
            self.status, self.completed = "canceled", now()
            self.logs += "Prediction canceled.\n"
            self.changed.set()

    def to_json(self, *, status: str | None = None) -> dict[str, Any]:
        base = f"{self.origin}/replicate/v1/predictions/{self.id}"
        metrics: dict[str, Any] = {}
        if self.status == "succeeded" and self.started is not None and self.completed is not None:
            metrics = {"predict_time": round(self.completed - self.started, 3)}
            metrics["total_time"] = round(self.completed - self.created, 3)
        return {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "input": self.input,
            "output": self.output,
            "error": self.error,
            "logs": self.logs,
            "metrics": metrics,
            "status": status or self.status,
            "created_at": iso(self.created),
            "started_at": None if self.started is None else iso(self.started),
            "completed_at": None if self.completed is None else iso(self.completed),
            "data_removed": False,
            "urls": {"get": base, "cancel": f"{base}/cancel", "web": f"{self.origin}/replicate/p/{self.id}"},
        }


def _new_id() -> str:
    return base64.b32encode(uuid.uuid4().bytes).decode().rstrip("=").lower()[:26]


def _wait_seconds(prefer: str) -> float | None:
    """`Prefer: wait` -> 60, `Prefer: wait=5` -> 5, anything else -> None."""
    for item in prefer.split(","):
        key, _, value = item.strip().partition("=")
        if key.strip().lower() == "wait":
            value = value.strip()
            seconds = float(value) if value.replace(".", "", 1).isdigit() else MAX_WAIT_S
            return min(max(seconds, 0.0), MAX_WAIT_S)
    return None


def routes(sim: Simulator) -> list[BaseRoute]:
    async def guard(request: Request, endpoint: str, model: str | None = None) -> Response | None:
        if reply := await sim.enter(request, PROVIDER, endpoint, error=error, model=model):
            return reply
        if not bearer(request):
            return error(401, "You did not pass a valid authentication token")
        return None

    def find(prediction_id: str) -> Prediction | None:
        with sim.lock:
            prediction = sim.predictions.get(prediction_id)
        if prediction is not None:
            prediction.advance(sim)
        return prediction

    async def create(request: Request) -> Response:
        params = request.path_params
        body = await json_body(request, error)
        if isinstance(body, Response):
            return body
        if "owner" in params:
            model, version = f"{params['owner']}/{params['name']}", version_id(f"{params['owner']}/{params['name']}")
        else:
            raw = str(body.get("version") or "")
            model, _, version = raw.rpartition(":") if ":" in raw else ("", "", raw)
            model = model or "simulator/unknown-model"
        if reply := await guard(request, "predictions.create", model):
            return reply
        if "owner" not in params and not version:
            return error(422, "- version: Invalid type. Expected: string, given: null")
        model_input = body.get("input")
        if not isinstance(model_input, dict):
            return error(422, "- input: Invalid type. Expected: object")
        fault = sim.take_prediction_failure()
        prediction = Prediction(
            id=_new_id(),
            model=model,
            version=version,
            input=model_input,
            origin=origin(request),
            created=now(),
            starting_s=sim.starting_s,
            processing_s=sim.prediction_time(),
            fail=None if fault is None else (fault.message or "Simulated prediction failure"),
        )
        with sim.lock:
            sim.predictions[prediction.id] = prediction
        wait = _wait_seconds(request.headers.get("prefer", ""))
        if wait is None:
            return JSONResponse(prediction.to_json(), status_code=201)
        await _hold(sim, prediction, wait)
        still_running = prediction.status not in TERMINAL
        return JSONResponse(prediction.to_json(status="starting" if still_running else None), status_code=201)

    async def get(request: Request) -> Response:
        if reply := await guard(request, "predictions.get"):
            return reply
        prediction = find(request.path_params["prediction_id"])
        if prediction is None:
            return error(404, "The requested resource could not be found.")
        return JSONResponse(prediction.to_json())

    async def cancel(request: Request) -> Response:
        if reply := await guard(request, "predictions.cancel"):
            return reply
        prediction = find(request.path_params["prediction_id"])
        if prediction is None:
            return error(404, "The requested resource could not be found.")
        prediction.cancel()
        return JSONResponse(prediction.to_json())

    async def list_predictions(request: Request) -> Response:
        if reply := await guard(request, "predictions.list"):
            return reply
        results = sim.prediction_list()
        results.sort(key=lambda p: p["created_at"], reverse=True)
        return JSONResponse({"previous": None, "next": None, "results": results})

    async def get_version(request: Request) -> Response:
        model = f"{request.path_params['owner']}/{request.path_params['name']}"
        if reply := await guard(request, "versions.get", model):
            return reply
        output = {"type": "array", "items": {"type": "string", "format": "uri"}, "title": "Output"}
        return JSONResponse(
            {
                "id": request.path_params["version_id"],
                "created_at": iso(1_700_000_000),
                "cog_version": "0.9.0",
                "openapi_schema": {"components": {"schemas": {"Output": output}}},
            }
        )

    async def file(request: Request) -> Response:
        with sim.lock:
            png = sim.files.get(request.path_params["file_id"])
        if png is None:
            return error(404, "No such file.")
        return Response(png, media_type="image/png")

    async def redirect(request: Request) -> Response:
        return Response(status_code=302, headers={"Location": request.query_params.get("to", "/")})

    async def large(request: Request) -> Response:
        png, size = images.render_png("large"), int(request.query_params.get("bytes", "0"))

        async def body() -> AsyncIterator[bytes]:
            yield png
            for start in range(len(png), size, 65536):
                yield bytes(min(65536, size - start))

        return StreamingResponse(body(), media_type="image/png")

    async def not_found(request: Request) -> Response:
        return error(404, "The requested resource could not be found.")

    return [
        Route("/v1/predictions", create, methods=["POST"]),
        Route("/v1/predictions", list_predictions, methods=["GET"]),
        Route("/v1/models/{owner}/{name}/predictions", create, methods=["POST"]),
        Route("/v1/deployments/{owner}/{name}/predictions", create, methods=["POST"]),
        Route("/v1/models/{owner}/{name}/versions/{version_id}", get_version, methods=["GET"]),
        Route("/v1/predictions/{prediction_id}", get, methods=["GET"]),
        Route("/v1/predictions/{prediction_id}/cancel", cancel, methods=["POST"]),
        Route("/files/large.png", large, methods=["GET"]),
        Route("/files/{file_id}.png", file, methods=["GET"]),
        Route("/redirect", redirect, methods=["GET"]),
        Route("/{path:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]


async def _hold(sim: Simulator, prediction: Prediction, seconds: float) -> None:
    """Wait until the prediction is final (done, failed or canceled), at most `seconds`."""
    deadline = now() + seconds
    while True:
        prediction.advance(sim)
        if prediction.status in TERMINAL:
            return
        next_change = prediction.created + prediction.starting_s
        if prediction.status == "processing":
            next_change = prediction.done_at
        timeout = min(next_change, deadline) - now()
        if now() >= deadline or sim.stopping:
            return
        prediction.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(prediction.changed.wait(), timeout=max(timeout, 0.001))
