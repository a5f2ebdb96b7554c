"""RBAC over every route the gateway serves, for every role, with Clerk tokens and roles
from the users collection (the production path). A route added without an entry here fails
`test_every_route_has_a_matrix_entry`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from pymongo import AsyncMongoClient

from chat.settings import ChatSettings
from credits.settings import CreditsSettings
from gateway.settings import GatewaySettings
from imagegen.settings import ImagegenSettings
from tests.support.clerk import FakeClerk, webhook
from tests.support.services import in_process

pytestmark = pytest.mark.integration

PRINCIPALS = ("anonymous", "user", "subscriber", "admin")
IDS = {role: f"user_rbac_{role}" for role in PRINCIPALS[1:]}
CHAT = {"messages": [{"role": "user", "content": "hi"}]}


@dataclass(frozen=True)
class Call:
    """How to exercise a route, and the status each principal must get."""

    path: str
    expect: dict[str, int]
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    signed_webhook: bool = False


def everyone(status: int) -> dict[str, int]:
    return dict.fromkeys(PRINCIPALS, status)


SIGNED_IN = {"anonymous": 401, "user": 200, "subscriber": 200, "admin": 200}
ACCEPTED = {"user": 202, "subscriber": 202, "admin": 202}
NOT_FOUND = {"user": 404, "subscriber": 404, "admin": 404}
SMALL_IMAGE = {"prompt": "a red lighthouse", "size": "256x256"}
NOBODYS = "7d1c7f0e-1111-4222-8333-944455556666"
ADMINS = {"anonymous": 401, "user": 403, "subscriber": 403, "admin": 200}

MATRIX: dict[tuple[str, str], Call] = {
    ("GET", "/openapi.json"): Call("/openapi.json", everyone(200)),
    ("GET", "/docs"): Call("/docs", everyone(200)),
    ("GET", "/docs/oauth2-redirect"): Call("/docs/oauth2-redirect", everyone(200)),
    ("GET", "/redoc"): Call("/redoc", everyone(200)),
    ("GET", "/healthz"): Call("/healthz", everyone(200)),
    ("GET", "/readyz"): Call("/readyz", everyone(200)),
    ("GET", "/.well-known/jwks.json"): Call("/.well-known/jwks.json", everyone(404)),  # Clerk on: no dev issuer
    ("POST", "/v1/dev/token"): Call("/v1/dev/token", everyone(404), json={"email": "a@example.com"}),  # likewise
    ("GET", "/"): Call("/", everyone(404)),  # the web console is not built in this test's WEB_DIST_DIR
    ("GET", "/assets/{name}"): Call("/assets/app.js", everyone(404)),
    ("POST", "/v1/chat"): Call("/v1/chat", SIGNED_IN, json=CHAT),
    ("POST", "/v1/chat/completions"): Call("/v1/chat/completions", SIGNED_IN, json={**CHAT, "model": "local-echo-1"}),
    ("POST", "/v1/embeddings"): Call("/v1/embeddings", SIGNED_IN, json={"model": "local-embed-1", "input": "hi"}),
    ("GET", "/v1/models"): Call("/v1/models", SIGNED_IN),
    ("GET", "/v1/models/{model_id:path}"): Call("/v1/models/local-echo-1", SIGNED_IN),
    ("GET", "/v1/credits"): Call("/v1/credits", SIGNED_IN),
    ("GET", "/v1/me"): Call("/v1/me", SIGNED_IN),
    ("GET", "/v1/credits/history"): Call("/v1/credits/history", SIGNED_IN),
    ("POST", "/v1/admin/reconcile"): Call("/v1/admin/reconcile", ADMINS),
    ("POST", "/v1/admin/credits/grants"): Call(
        "/v1/admin/credits/grants",
        ADMINS,
        json={"user_id": IDS["user"], "amount": 3},
        headers={"Idempotency-Key": "rbac-grant-1"},
    ),
    ("PUT", "/v1/admin/users/{user_id}/role"): Call(
        f"/v1/admin/users/{IDS['user']}/role", ADMINS, json={"role": "user"}
    ),
    ("GET", "/v1/admin/users"): Call("/v1/admin/users", ADMINS),
    ("GET", "/v1/admin/analytics/usage"): Call("/v1/admin/analytics/usage", ADMINS),
    ("GET", "/v1/admin/analytics/credits"): Call("/v1/admin/analytics/credits", ADMINS),
    ("POST", "/v1/images"): Call("/v1/images", SIGNED_IN | ACCEPTED, json=SMALL_IMAGE),
    ("POST", "/v1/images/generations"): Call("/v1/images/generations", SIGNED_IN, json=SMALL_IMAGE),
    ("GET", "/v1/images"): Call("/v1/images", SIGNED_IN),
    # Another user's (or no) job or image answers 404 to everyone signed in: ids reveal nothing.
    ("GET", "/v1/images/jobs/{job_id}"): Call(f"/v1/images/jobs/{NOBODYS}", SIGNED_IN | NOT_FOUND),
    ("GET", "/v1/images/jobs/{job_id}/events"): Call(f"/v1/images/jobs/{NOBODYS}/events", SIGNED_IN | NOT_FOUND),
    ("GET", "/v1/images/{image_id}"): Call(f"/v1/images/{NOBODYS}", SIGNED_IN | NOT_FOUND),
    ("DELETE", "/v1/images/{image_id}"): Call(f"/v1/images/{NOBODYS}", SIGNED_IN | NOT_FOUND),
    # Threads are their owner's alone, admins' too: another's (or no) thread is 404 to everyone signed in.
    ("POST", "/v1/threads"): Call("/v1/threads", SIGNED_IN | dict.fromkeys(IDS, 201), json={}),
    ("GET", "/v1/threads"): Call("/v1/threads", SIGNED_IN),
    ("GET", "/v1/threads/{thread_id}"): Call(f"/v1/threads/{NOBODYS}", SIGNED_IN | NOT_FOUND),
    ("PATCH", "/v1/threads/{thread_id}"): Call(f"/v1/threads/{NOBODYS}", SIGNED_IN | NOT_FOUND, json={"title": "t"}),
    ("DELETE", "/v1/threads/{thread_id}"): Call(f"/v1/threads/{NOBODYS}", SIGNED_IN | NOT_FOUND),
    # Stored image files are public by their unguessable names, as Cloudinary URLs are.
    ("GET", "/files/images/{folder}/{name}"): Call(f"/files/images/nobody/{NOBODYS}.png", everyone(404)),
    # Public, authenticated by its Svix signature instead of a token: a signed delivery is accepted from anyone.
    ("POST", "/webhooks/clerk"): Call("/webhooks/clerk", everyone(200), signed_webhook=True),
}


def routes(app: FastAPI) -> set[tuple[str, str]]:
    found = set()
    for route in iter_route_contexts(app.routes):
        for method in route.methods or ():
            if method != "HEAD" and route.path is not None:
                found.add((method, route.path.replace(":uuid}", "}")))  # as the document names it
    return found


async def seed_users(settings: GatewaySettings, mongodb_url: str) -> None:
    now = datetime.now(UTC)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        users = client[settings.mongodb_database]["users"]
        for role, user_id in IDS.items():
            doc = {"clerkUserId": user_id, "userEmail": f"{role}@example.com", "role": role, "metadata": {}}
            await users.insert_one({"_id": user_id, **doc, "createdAt": now, "updatedAt": now})
    finally:
        await client.close()


@pytest.fixture
def clerk_settings(clerk_settings: GatewaySettings, tmp_path: Path) -> GatewaySettings:
    return clerk_settings.model_copy(update={"image_data_dir": tmp_path / "images", "web_dist_dir": tmp_path / "web"})


@pytest.fixture
async def services(clerk_settings: GatewaySettings, mongodb_url: str) -> AsyncIterator[None]:
    """Credits, chat and imagegen (drawing and storing locally) beside the gateway, as in production."""
    common = clerk_settings.model_dump(include={"amqp_url", "redis_url", "bus_namespace", "mongodb_url"})
    database = clerk_settings.mongodb_database
    credits = CreditsSettings(**common, mongodb_database=database, signup_credits=100)
    images = ImagegenSettings(
        **common,
        mongodb_database=database,
        image_data_dir=clerk_settings.image_data_dir,
        image_provider="local",
        image_storage="local",
    )
    await seed_users(clerk_settings, mongodb_url)
    async with (
        in_process("credits", credits),
        in_process("chat", ChatSettings(**common)),
        in_process("imagegen", images),
    ):
        yield


def test_every_route_has_a_matrix_entry(clerk_app: FastAPI) -> None:
    served = routes(clerk_app)
    assert served - set(MATRIX) == set(), "add these routes to the RBAC matrix"
    assert set(MATRIX) - served == set(), "these matrix entries name routes that no longer exist"


@pytest.mark.parametrize("principal", PRINCIPALS)
async def test_rbac_matrix(
    clerk_client: httpx.AsyncClient, fake_clerk: FakeClerk, services: None, principal: str
) -> None:
    auth = {} if principal == "anonymous" else {"Authorization": f"Bearer {fake_clerk.token(IDS[principal])}"}
    got, want = {}, {}
    for (method, _), call in MATRIX.items():
        headers = auth | call.headers
        content = None
        if call.signed_webhook:
            content, signature = webhook("session.created", {"id": "sess_rbac", "object": "session"})
            headers |= signature
        response = await clerk_client.request(method, call.path, json=call.json, content=content, headers=headers)
        got[f"{method} {call.path}"], want[f"{method} {call.path}"] = response.status_code, call.expect[principal]
    assert got == want


async def test_a_role_claim_in_a_clerk_token_is_ignored(
    clerk_client: httpx.AsyncClient, fake_clerk: FakeClerk, services: None
) -> None:
    forged_role = fake_clerk.token(IDS["user"], role="admin", metadata={"role": "admin"})
    response = await clerk_client.get("/v1/admin/users", headers={"Authorization": f"Bearer {forged_role}"})
    assert response.status_code == 403


async def test_an_admin_changes_a_role_and_it_applies_at_once(
    clerk_client: httpx.AsyncClient, fake_clerk: FakeClerk, services: None
) -> None:
    admin = {"Authorization": f"Bearer {fake_clerk.token(IDS['admin'])}"}
    user = {"Authorization": f"Bearer {fake_clerk.token(IDS['user'])}"}
    assert (await clerk_client.get("/v1/admin/users", headers=user)).status_code == 403
    promoted = await clerk_client.put(f"/v1/admin/users/{IDS['user']}/role", json={"role": "admin"}, headers=admin)
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    listing = await clerk_client.get("/v1/admin/users", params={"role": "admin"}, headers=user)
    assert listing.status_code == 200
    assert {u["id"] for u in listing.json()["users"]} == {IDS["admin"], IDS["user"]}


async def test_admin_routes_refuse_bad_input(
    clerk_client: httpx.AsyncClient, fake_clerk: FakeClerk, services: None
) -> None:
    admin = {"Authorization": f"Bearer {fake_clerk.token(IDS['admin'])}"}
    role = await clerk_client.put("/v1/admin/users/user_nobody/role", json={"role": "user"}, headers=admin)
    assert role.status_code == 404
    root = await clerk_client.put(f"/v1/admin/users/{IDS['user']}/role", json={"role": "root"}, headers=admin)
    assert root.status_code == 422
    grant = {"user_id": IDS["user"], "amount": 5}
    # The Idempotency-Key is a required header (as documented): without it the request is invalid.
    assert (await clerk_client.post("/v1/admin/credits/grants", json=grant, headers=admin)).status_code == 422
    nobody = {"user_id": "user_nobody", "amount": 5}
    keyed = admin | {"Idempotency-Key": "k-404"}
    assert (await clerk_client.post("/v1/admin/credits/grants", json=nobody, headers=keyed)).status_code == 404


async def test_an_admin_grant_retried_with_its_key_grants_once(
    clerk_client: httpx.AsyncClient, fake_clerk: FakeClerk, services: None
) -> None:
    admin = {"Authorization": f"Bearer {fake_clerk.token(IDS['admin'])}", "Idempotency-Key": "grant-once"}
    user = {"Authorization": f"Bearer {fake_clerk.token(IDS['subscriber'])}"}
    assert (await clerk_client.get("/v1/credits", headers=user)).json()["granted"] == 100
    body = {"user_id": IDS["subscriber"], "amount": 40, "reason": "purchase"}
    first = await clerk_client.post("/v1/admin/credits/grants", json=body, headers=admin)
    again = await clerk_client.post("/v1/admin/credits/grants", json=body, headers=admin)
    assert first.status_code == again.status_code == 200, first.text
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert (await clerk_client.get("/v1/credits", headers=user)).json()["granted"] == 140
    other = await clerk_client.post("/v1/admin/credits/grants", json={**body, "amount": 41}, headers=admin)
    assert other.status_code == 409
