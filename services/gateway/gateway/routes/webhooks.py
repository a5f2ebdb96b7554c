"""Clerk webhooks (delivered by Svix): keep the users collection in step with Clerk, and
give a new user their signup credits.

Every delivery is verified with the endpoint's Svix secret (signature and a 5-minute
timestamp tolerance) before anything is read; a bad one is 401. Handling is idempotent, so
Svix's retries and replays change nothing twice: user documents are upserts, and the signup
grant is `GrantCredits` with the key `signup:<user id>`, the same key the ledger's own
first-sight grant uses, so a user is granted signup credits exactly once however the two
meet. The answer waits for the ledger's reply, so a 200 means the grant is applied; if the
broker or the ledger is down the answer is 503/504 and Svix delivers again later.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from svix.webhooks import Webhook, WebhookVerificationError

from common.bus import RpcClient
from common.contracts import Caller, CreditsGranted, GrantCredits
from common.errors import ServiceUnavailable, Unauthenticated, ValidationFailed
from gateway.deps import RequestId, Rpc, Settings
from gateway.responses import WEBHOOK
from gateway.users import UserDirectory

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])
GRANT_WAIT_S = 10.0  # Svix waits 15 s for an answer; past this we answer 504 and it delivers again


class _EmailAddress(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    email_address: str


class ClerkUser(BaseModel):
    """The part of Clerk's user object the platform keeps (Clerk sends much more)."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=128)
    email_addresses: list[_EmailAddress] = Field(default_factory=list)
    primary_email_address_id: str | None = None
    public_metadata: dict[str, Any] = Field(default_factory=dict)
    deleted: bool = False

    @property
    def email(self) -> str:
        primary = next((e for e in self.email_addresses if e.id == self.primary_email_address_id), None)
        chosen = primary or (self.email_addresses[0] if self.email_addresses else None)
        return chosen.email_address if chosen else ""


class ClerkEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    data: ClerkUser | dict[str, Any]


@router.post("/webhooks/clerk", summary="Clerk user events (Svix-signed)", responses=WEBHOOK)
async def clerk_webhook(request: Request, settings: Settings, rpc: Rpc, request_id: RequestId) -> dict[str, Any]:
    if settings.clerk_webhook_secret is None:
        raise ServiceUnavailable("Clerk webhooks are not configured (CLERK_WEBHOOK_SECRET)")
    body = await request.body()
    try:
        Webhook(settings.clerk_webhook_secret.get_secret_value()).verify(body, dict(request.headers))
    except WebhookVerificationError as exc:
        raise Unauthenticated("webhook signature does not verify") from exc
    try:
        event = ClerkEvent.model_validate_json(body)
    except ValidationError as exc:
        raise ValidationFailed("not a Clerk event") from exc
    users: UserDirectory = request.app.state.users
    user = event.data if isinstance(event.data, ClerkUser) else None
    if user is None or not event.type.startswith("user."):
        return {"received": event.type, "handled": False}
    if event.type in ("user.created", "user.updated"):
        await users.described(user_id=user.id, email=user.email, metadata=user.public_metadata)
    elif event.type == "user.deleted":
        await users.deleted(user.id)
    else:
        return {"received": event.type, "handled": False}
    if event.type == "user.created" and settings.signup_credits > 0:
        await _grant_signup(rpc, user, amount=settings.signup_credits, request_id=request_id)
    log.info("clerk webhook handled", extra={"event": event.type, "user_id": user.id})
    return {"received": event.type, "handled": True}


async def _grant_signup(rpc: RpcClient, user: ClerkUser, *, amount: int, request_id: str) -> None:
    key = f"signup:{user.id}"
    caller = Caller(request_id=request_id, actor=None, deadline=datetime.now(UTC) + timedelta(seconds=GRANT_WAIT_S))
    payload = GrantCredits(idempotency_key=key, user_id=user.id, email=user.email, amount=amount, reason="signup")
    granted = await rpc.call(
        caller.envelope(payload, message_id=uuid.uuid5(uuid.NAMESPACE_URL, key)), reply_model=CreditsGranted
    )
    log.info("signup credits granted (once)", extra={"user_id": user.id, "granted": granted.balance.granted})
