"""Development sign-in for the web console: a development token for an email and role.

Exists only where the development issuer does (ENVIRONMENT=development and Clerk not
configured); everywhere else it answers 404, like /.well-known/jwks.json. Not in the OpenAPI
document: it is no part of the production API.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from common.contracts import Role
from common.contracts.patterns import EMAIL
from common.errors import NotFound

router = APIRouter(include_in_schema=False)

DEV_TOKEN_TTL_S = 8 * 3600


class DevSignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, Field(min_length=3, max_length=254, pattern=EMAIL)]
    role: Role | None = Field(
        "user", description="The role the token asserts; null: none, so the users collection decides, as for Clerk."
    )


class DevToken(BaseModel):
    token: str
    expires_in: int


@router.post("/v1/dev/token", response_model=DevToken)
async def dev_token(body: DevSignIn, request: Request) -> DevToken:
    issuer = request.app.state.dev_issuer
    if issuer is None:
        raise NotFound("no development issuer here")
    return DevToken(
        token=issuer.token(email=body.email, role=body.role, ttl_s=DEV_TOKEN_TTL_S), expires_in=DEV_TOKEN_TTL_S
    )
