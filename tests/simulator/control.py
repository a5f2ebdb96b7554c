"""The `/_sim` control API: turn knobs, read counters and stored state, reset.

- `POST /_sim/faults`: one fault spec or a list of them (see `faults.py`); 400 when not understood.
- `GET /_sim/faults`: queued faults and per-provider settings.
- `GET /_sim/calls`: `{"total", "providers": {name: {"total", "endpoints": {...}}}, "recent": [...]}`.
- `POST /_sim/reset`: clear faults, settings, counters and stored state.
- `GET /_sim/cloudinary/assets`: `{"public_ids": [...], "assets": [...]}`.
- `GET /_sim/replicate/predictions`: `{"predictions": [...]}` (as `GET /v1/predictions/{id}` shows them).
- `GET /_sim/health`: `{"ok": true}`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from tests.simulator.wire import origin

if TYPE_CHECKING:
    from tests.simulator.app import Simulator


def routes(sim: Simulator) -> list[BaseRoute]:
    async def add_faults(request: Request) -> JSONResponse:
        try:
            body = json.loads(await request.body())
            specs = body if isinstance(body, list) else [body]
            for spec in specs:
                if not isinstance(spec, dict):
                    raise ValueError("a fault spec is a JSON object")
                sim.faults.add(spec)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(sim.faults.snapshot())

    async def faults(_: Request) -> JSONResponse:
        return JSONResponse(sim.faults.snapshot())

    async def calls(_: Request) -> JSONResponse:
        return JSONResponse(sim.calls.snapshot())

    async def reset(_: Request) -> JSONResponse:
        sim.reset()
        return JSONResponse({"ok": True})

    async def assets(request: Request) -> JSONResponse:
        with sim.lock:
            stored = list(sim.assets.values())
        listed = [a.to_json(origin(request), sim.cloudinary_key) for a in stored]
        return JSONResponse({"public_ids": sorted(a.public_id for a in stored), "assets": listed})

    async def predictions(_: Request) -> JSONResponse:
        return JSONResponse({"predictions": sim.prediction_list()})

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return [
        Route("/faults", add_faults, methods=["POST"]),
        Route("/faults", faults, methods=["GET"]),
        Route("/calls", calls, methods=["GET"]),
        Route("/reset", reset, methods=["POST"]),
        Route("/cloudinary/assets", assets, methods=["GET"]),
        Route("/replicate/predictions", predictions, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ]
