"""Who the caller is, as this gateway judges them: the verified token's user and the role their
requests get (a development token's claim, else the users collection). The web console asks it
once after sign-in to decide what to show; the server still checks every request."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from common.contracts import Role
from gateway.auth.caller import CurrentUser
from gateway.auth.users import UNKNOWN_EMAIL_DOMAIN
from gateway.http.responses import ME

router = APIRouter(tags=["me"])


class MeView(BaseModel):
    id: str = Field(description="Your user id (the token's `sub`).", examples=["user_2abc"])
    email: str | None = Field(description="Your email address, when the token or Clerk gave one.")
    role: Role = Field(description="The role your requests are judged with.")


@router.get("/v1/me", response_model=MeView, summary="Who you are: your user id, email and role", responses=ME)
async def me(user: CurrentUser) -> MeView:
    email = None if user.email.endswith("@" + UNKNOWN_EMAIL_DOMAIN) else user.email
    return MeView(id=user.id, email=email, role=user.role)
