"""Dependencies named as types, so a route's signature reads like prose."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Header, Request

from common.bus import RpcClient
from common.contracts import Caller
from common.credits import CreditsClient
from common.errors import ValidationFailed
from gateway.auth import CurrentUser
from gateway.settings import GatewaySettings


def _settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


def _rpc(request: Request) -> RpcClient:
    rpc: RpcClient = request.app.state.rpc
    return rpc


def _request_id(request: Request) -> str:
    request_id: str = request.state.request_id
    return request_id


Settings = Annotated[GatewaySettings, Depends(_settings)]
Rpc = Annotated[RpcClient, Depends(_rpc)]
RequestId = Annotated[str, Depends(_request_id)]


def _deadline(
    settings: Settings,
    x_request_timeout: Annotated[str | None, Header(description="Seconds the client will wait for an answer.")] = None,
) -> datetime:
    timeout = settings.request_timeout_s
    if x_request_timeout is not None:
        try:
            timeout = float(x_request_timeout)
        except ValueError:
            timeout = -1.0
        if not 0 < timeout <= settings.max_request_timeout_s:
            raise ValidationFailed(
                f"X-Request-Timeout must be a number of seconds in (0, {settings.max_request_timeout_s}]",
                errors=[{"field": "header.x-request-timeout", "message": "out of range", "type": "value_error"}],
            )
    return datetime.now(UTC) + timedelta(seconds=timeout)


Deadline = Annotated[datetime, Depends(_deadline)]


def _caller(user: CurrentUser, request_id: RequestId, deadline: Deadline) -> Caller:
    return Caller(request_id=request_id, actor=user, deadline=deadline)


def _credits(rpc: Rpc) -> CreditsClient:
    return CreditsClient(rpc)


UserCaller = Annotated[Caller, Depends(_caller)]
Credits = Annotated[CreditsClient, Depends(_credits)]
