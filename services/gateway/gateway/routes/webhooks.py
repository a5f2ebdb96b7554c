"""Clerk webhooks (delivered by Svix): keep the users collection in step with Clerk, and
give a new user their signup credits.

Every delivery is verified with the endpoint's Svix secret (signature and a 5-minute
timestamp tolerance) before anything is read; a bad one is 401. A message handled already
(the same `svix-id`) is answered as it was the first time and not handled again. Events apply
in the order Clerk made them, not the order they arrive: the user document keeps the time of
the latest event applied and an older one changes nothing, and `user.deleted` leaves a
tombstone even for a user never seen here (see `gateway.auth.users`). Handling is idempotent, so
Svix's retries and replays change nothing twice: user documents are upserts, and the signup
grant is `GrantCredits` with the key `signup:<user id>`, the same key the ledger's own
first-sight grant uses, so a user is granted signup credits exactly once however the two
meet (and never once the user is deleted). The answer waits for the ledger's reply, so a 200
means the grant is applied; if the broker or the ledger is down the answer is 503/504 (not
kept) and Svix delivers again later.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from svix.webhooks import Webhook, WebhookVerificationError

from common.bus import RpcClient
from common.contracts import Balance, Caller, GetBalance
from common.errors import ServiceUnavailable, Unauthenticated, ValidationFailed
from gateway.auth.users import UserDirectory
from gateway.deps import RequestId, Rpc, Settings
from gateway.http.responses import WEBHOOK
from gateway.settings import GatewaySettings
from gateway.webhook_deliveries import WebhookDeliveries

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
    timestamp: int | None = Field(None, ge=0, description="When Clerk made the event, in ms since the epoch.")

    def made_at(self, svix_timestamp: str) -> datetime:
        """The event's time; a payload without one counts as made when Svix first signed it."""
        ms = self.timestamp if self.timestamp is not None else int(svix_timestamp) * 1000
        return datetime.fromtimestamp(ms / 1000, UTC)


class WebhookAnswer(BaseModel):
    received: str = Field(description="The event's type.")
    handled: bool = Field(description="False for event types the platform does not act on.")


@router.post(
    "/webhooks/clerk", response_model=WebhookAnswer, summary="Clerk user events (Svix-signed)", responses=WEBHOOK
)
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
    deliveries: WebhookDeliveries = request.app.state.webhook_deliveries
    svix_id = _header(request, "id")
    if (answer := await deliveries.answer(svix_id)) is not None:
        log.info("clerk webhook redelivered; answered as before", extra={"event": event.type, "svix_id": svix_id})
        return answer
    answer = await _handle(event, request, settings, rpc, request_id)
    await deliveries.handled(svix_id, answer)
    return answer


def _header(request: Request, name: str) -> str:
    """A Svix header the signature covered (Svix also sends them as `webhook-*`)."""
    return request.headers.get(f"svix-{name}") or request.headers[f"webhook-{name}"]


async def _handle(
    event: ClerkEvent, request: Request, settings: GatewaySettings, rpc: RpcClient, request_id: str
) -> dict[str, Any]:
    users: UserDirectory = request.app.state.users
    user = event.data if isinstance(event.data, ClerkUser) else None
    if user is None or event.type not in ("user.created", "user.updated", "user.deleted"):
        return {"received": event.type, "handled": False}
    made_at = event.made_at(_header(request, "timestamp"))
    if event.type == "user.deleted":
        await users.deleted(user.id, event_at=made_at)
    elif not await users.described(user_id=user.id, email=user.email, metadata=user.public_metadata, event_at=made_at):
        log.info("clerk webhook older than the user's last event; ignored", extra={"event": event.type})
    if event.type == "user.created" and not await users.is_deleted(user.id):
        await _open_account(rpc, user, request_id=request_id)
    log.info("clerk webhook handled", extra={"event": event.type, "user_id": user.id})
    return {"received": event.type, "handled": True}


async def _open_account(rpc: RpcClient, user: ClerkUser, *, request_id: str) -> None:
    """Ask the ledger for the new user's balance: it opens the account on first sight with its
    signup grant (the ledger owns SIGNUP_CREDITS and grants it once, under `signup:<user>`)."""
    caller = Caller(request_id=request_id, actor=None, deadline=datetime.now(UTC) + timedelta(seconds=GRANT_WAIT_S))
    balance = await rpc.call(caller.envelope(GetBalance(user_id=user.id, email=user.email)), reply_model=Balance)
    log.info("credits account opened", extra={"user_id": user.id, "granted": balance.granted})
