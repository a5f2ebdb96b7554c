from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from common.errors import ServiceUnavailable
from gateway.deps import RequestId
from gateway.http.responses import PROBE, problems
from gateway.ratelimit.store import Mode

router = APIRouter(tags=["health"])


class Liveness(BaseModel):
    status: Literal["ok"]


@router.get("/healthz", response_model=Liveness, summary="The process is alive", responses=PROBE)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


class Checks(BaseModel):
    broker: bool
    redis: bool
    mongodb: bool


class Readiness(BaseModel):
    status: Literal["ready", "degraded"] = Field(description="`degraded`: serving, with a store down (see checks).")
    checks: Checks
    rate_limiter: Mode = Field(description="Where rate limits are counted now.")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="The broker and stores are reachable",
    responses=PROBE | problems(503),
)
async def readyz(request: Request, request_id: RequestId) -> Any:
    """Ready when the broker and MongoDB answer. Redis down is not unready under the default
    RATE_LIMIT_FALLBACK=local: the gateway keeps serving with an in-process rate limiter and
    says so here (`rate_limiter: local`, status `degraded`)."""
    state = request.app.state
    checks = {"broker": state.bus.is_ready, "redis": await state.limiter.probe()}
    try:
        async with asyncio.timeout(2):
            checks["mongodb"] = bool((await state.mongo.admin.command("ping")).get("ok"))
    except Exception:
        checks["mongodb"] = False
    mode = state.limiter.mode
    required = {name: ok for name, ok in checks.items() if name != "redis" or mode == "unavailable"}
    if not all(required.values()):
        failing = ", ".join(name for name, ok in required.items() if not ok)
        raise ServiceUnavailable(f"not ready: {failing}", checks=checks, rate_limiter=mode)
    status = "ready" if all(checks.values()) else "degraded"
    return JSONResponse({"status": status, "checks": checks, "rate_limiter": mode})


@router.get(
    "/.well-known/jwks.json",
    summary="Public keys of the development token issuer (development only)",
    include_in_schema=False,
)
async def jwks(request: Request) -> Any:
    issuer = request.app.state.dev_issuer
    if issuer is None:
        from common.errors import NotFound

        raise NotFound("no development issuer here")
    return issuer.jwks
