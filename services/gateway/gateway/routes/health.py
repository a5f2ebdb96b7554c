from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from common.errors import ServiceUnavailable
from gateway.deps import RequestId

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The broker and stores are reachable")
async def readyz(request: Request, request_id: RequestId) -> Any:
    checks = {"broker": request.app.state.bus.is_ready}
    try:
        checks["redis"] = bool(await request.app.state.redis.ping())
    except Exception:
        checks["redis"] = False
    if not all(checks.values()):
        failing = ", ".join(name for name, ok in checks.items() if not ok)
        raise ServiceUnavailable(f"not ready: {failing}", checks=checks)
    return JSONResponse({"status": "ready", "checks": checks})


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
