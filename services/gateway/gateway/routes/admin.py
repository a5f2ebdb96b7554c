"""Administration (admins only): grant credits, set a user's role, list users."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from common.contracts import CreditsGranted, GrantCredits, Role
from common.errors import NotFound
from gateway.auth.caller import AdminUser
from gateway.auth.users import UserDirectory, UserPage, UserView
from gateway.deps import Rpc, UserCaller
from gateway.http.json_body import ParsedBodyRoute
from gateway.http.params import IDEMPOTENCY_KEY_PATTERN
from gateway.http.responses import GRANT, SET_ROLE, USERS

router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=ParsedBodyRoute)

UserId = Annotated[str, Path(min_length=1, max_length=128, description="The user's id (Clerk `sub`).")]


def _users(request: Request) -> UserDirectory:
    users: UserDirectory = request.app.state.users
    return users


class GrantBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=128, description="Who receives the credits.")
    amount: int = Field(gt=0, le=1_000_000, description="Credits to add.")
    reason: Literal["admin", "purchase", "refund"] = Field("admin", description="Why, as the journal records it.")


class RoleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role


@router.post(
    "/credits/grants",
    response_model=CreditsGranted,
    summary="Grant credits to a user (admin); the Idempotency-Key makes a retry grant once",
    responses=GRANT,
)
async def grant(
    body: GrantBody,
    request: Request,
    _: AdminUser,
    caller: UserCaller,
    rpc: Rpc,
    idempotency_key: Annotated[
        str,
        Header(
            min_length=1,
            max_length=64,
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="Required: a retry with the same key grants once.",
        ),
    ],
) -> CreditsGranted:
    user = await _users(request).find(body.user_id)
    if user is None:
        raise NotFound("no such user")
    # Ledger keys are global, so the target user is part of it: one admin key cannot collide across users.
    key = f"admin:{body.user_id}:{idempotency_key}"
    payload = GrantCredits(
        idempotency_key=key,
        user_id=body.user_id,
        email=user.email,
        amount=body.amount,
        reason=body.reason,
    )
    envelope = caller.envelope(payload, message_id=uuid.uuid5(uuid.NAMESPACE_URL, key))
    return await rpc.call(envelope, reply_model=CreditsGranted)


@router.put("/users/{user_id}/role", response_model=UserView, summary="Set a user's role (admin)", responses=SET_ROLE)
async def set_role(user_id: UserId, body: RoleBody, request: Request, _: AdminUser) -> UserView:
    user = await _users(request).set_role(user_id, body.role)
    if user is None:
        raise NotFound("no such user")
    return user


@router.get("/users", response_model=UserPage, summary="List users by id (admin)", responses=USERS)
async def list_users(
    request: Request,
    _: AdminUser,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=128, description="next_cursor of the previous page")] = None,
    role: Annotated[Role | None, Query(description="Only users with this role.")] = None,
) -> UserPage:
    return await _users(request).page(limit=limit, after=cursor, role=role)
