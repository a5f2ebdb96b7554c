"""Dependencies named as types, so a route's signature reads like prose.

All are `async def`: FastAPI runs a plain `def` dependency in a worker thread, a thread
hop per dependency per request (most of these only read app state)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from common.bus import RpcClient
from common.contracts import Caller
from common.credits import CreditsClient
from gateway.auth.caller import BearerCredentials, current_user
from gateway.http.deadlines import deadline_from
from gateway.settings import GatewaySettings


async def _settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


async def _rpc(request: Request) -> RpcClient:
    rpc: RpcClient = request.app.state.rpc
    return rpc


async def _request_id(request: Request) -> str:
    request_id: str = request.state.request_id
    return request_id


Settings = Annotated[GatewaySettings, Depends(_settings)]
Rpc = Annotated[RpcClient, Depends(_rpc)]
RequestId = Annotated[str, Depends(_request_id)]


XRequestTimeout = Annotated[str | None, Header(description="Seconds the client will wait for an answer.")]


async def _caller(
    request: Request, credentials: BearerCredentials, x_request_timeout: XRequestTimeout = None
) -> Caller:
    """The user, request id and deadline of a request, as one dependency rather than a tree of
    them: it is on every route that publishes, and FastAPI's cost grows with each dependency it
    solves. The same checks in the same order: the user (401), then X-Request-Timeout (422)."""
    user = await current_user(request, credentials)
    settings: GatewaySettings = request.app.state.settings
    wait_s, max_s = settings.request_timeout_s, settings.max_request_timeout_s
    deadline = deadline_from(x_request_timeout, default_s=wait_s, max_s=max_s)
    return Caller(request_id=request.state.request_id, actor=user, deadline=deadline)


async def _credits(rpc: Rpc) -> CreditsClient:
    return CreditsClient(rpc)


UserCaller = Annotated[Caller, Depends(_caller)]
Credits = Annotated[CreditsClient, Depends(_credits)]
