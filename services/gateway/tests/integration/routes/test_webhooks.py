"""Clerk webhooks, Svix-signed, through the gateway to the users collection and the ledger."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from credits.settings import CreditsSettings
from gateway.settings import GatewaySettings
from tests.support.clerk import FakeClerk, clerk_user, signed, webhook
from tests.support.services import in_process
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

USER = "user_2webhooks000000000000000"


@pytest.fixture
async def ledger(clerk_settings: GatewaySettings) -> AsyncIterator[None]:
    common = clerk_settings.model_dump(include={"amqp_url", "redis_url", "bus_namespace", "mongodb_url"})
    settings = CreditsSettings(**common, mongodb_database=clerk_settings.mongodb_database, signup_credits=25)
    async with in_process("credits", settings):
        yield


@pytest.fixture
async def users(clerk_settings: GatewaySettings, mongodb_url: str) -> AsyncIterator[Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    yield client[clerk_settings.mongodb_database]["users"]
    await client.close()


async def deliver(http: httpx.AsyncClient, delivery: tuple[bytes, dict[str, str]]) -> httpx.Response:
    body, headers = delivery
    return await http.post("/webhooks/clerk", content=body, headers=headers)


async def signup_grants(http: httpx.AsyncClient, clerk: FakeClerk, user_id: str) -> list[dict[str, Any]]:
    """The account's signup grants in its journal, once the journal shows any (it is copied out shortly after)."""

    async def grants() -> list[dict[str, Any]]:
        response = await http.get("/v1/credits/history", headers={"Authorization": f"Bearer {clerk.token(user_id)}"})
        assert response.status_code == 200, response.text
        return [e for e in response.json()["entries"] if e["kind"] == "grant" and e["reason"] == "signup"]

    return await wait_until(grants, bool, within=10)


async def test_bad_signatures_are_401_and_change_nothing(clerk_client: httpx.AsyncClient, users: Any) -> None:
    body, headers = webhook("user.created", clerk_user(USER, "new@example.com"))
    forged = [
        (body.replace(b"new@example.com", b"evil@example.com"), headers),  # tampered body
        webhook("user.created", clerk_user(USER, "new@example.com"), secret="whsec_" + "QUJD" * 8),  # wrong secret
        (body, {k: v for k, v in headers.items() if k != "svix-signature"}),
        (body, {**headers, "svix-timestamp": str(int(headers["svix-timestamp"]) - 3600)}),  # stale: a replay attack
        (body, {"content-type": "application/json"}),
    ]
    for delivery in forged:
        response = await deliver(clerk_client, delivery)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert await users.find_one({"_id": USER}) is None


async def test_user_created_grants_signup_credits_once_however_often_it_is_delivered(
    clerk_client: httpx.AsyncClient, fake_clerk: FakeClerk, users: Any, ledger: None
) -> None:
    delivery = webhook("user.created", clerk_user(USER, "new@example.com"))
    for _ in range(3):  # Svix retries and replays deliver the very same message
        response = await deliver(clerk_client, delivery)
        assert response.status_code == 200 and response.json() == {"received": "user.created", "handled": True}
    assert len(await signup_grants(clerk_client, fake_clerk, USER)) == 1
    balance = await clerk_client.get("/v1/credits", headers={"Authorization": f"Bearer {fake_clerk.token(USER)}"})
    assert balance.json()["granted"] == 25
    doc = await users.find_one({"_id": USER})
    assert (doc["clerkUserId"], doc["userEmail"], doc["role"]) == (USER, "new@example.com", "user")


async def test_a_webhook_after_the_first_request_does_not_grant_again(
    clerk_client: httpx.AsyncClient, fake_clerk: FakeClerk, ledger: None
) -> None:
    early = "user_2seenbeforewebhook0000000"
    auth = {"Authorization": f"Bearer {fake_clerk.token(early)}"}
    assert (await clerk_client.get("/v1/credits", headers=auth)).json()["granted"] == 25  # the ledger's first sight
    assert (await deliver(clerk_client, webhook("user.created", clerk_user(early, "e@example.com")))).status_code == 200
    assert len(await signup_grants(clerk_client, fake_clerk, early)) == 1
    assert (await clerk_client.get("/v1/credits", headers=auth)).json()["granted"] == 25


async def test_user_updated_keeps_the_role_and_user_deleted_ends_access(
    clerk_client: httpx.AsyncClient, fake_clerk: FakeClerk, users: Any, ledger: None
) -> None:
    await deliver(clerk_client, webhook("user.created", clerk_user(USER, "old@example.com")))
    await users.update_one({"_id": USER}, {"$set": {"role": "subscriber"}})  # as an admin would
    updated = clerk_user(USER, "new@example.com", public_metadata={"plan": "pro"})
    assert (await deliver(clerk_client, webhook("user.updated", updated))).status_code == 200
    doc = await users.find_one({"_id": USER})
    assert (doc["userEmail"], doc["metadata"], doc["role"]) == ("new@example.com", {"plan": "pro"}, "subscriber")

    auth = {"Authorization": f"Bearer {fake_clerk.token(USER)}"}
    assert (await clerk_client.get("/v1/credits", headers=auth)).status_code == 200
    gone = {"id": USER, "object": "user", "deleted": True}
    assert (await deliver(clerk_client, webhook("user.deleted", gone))).status_code == 200
    refused = await clerk_client.get("/v1/credits", headers=auth)
    assert refused.status_code == 401 and refused.json()["detail"] == "this account has been deleted"


async def test_an_older_user_updated_arriving_late_does_not_undo_a_newer_one(
    clerk_client: httpx.AsyncClient, users: Any
) -> None:
    now_ms = int(time.time() * 1000)
    newer = webhook(
        "user.updated", clerk_user(USER, "new@example.com", public_metadata={"plan": "pro"}), timestamp_ms=now_ms
    )
    # Made a minute earlier; its first delivery failed and Svix's retry arrives after the newer event.
    older = webhook("user.updated", clerk_user(USER, "old@example.com"), timestamp_ms=now_ms - 60_000)
    assert (await deliver(clerk_client, newer)).status_code == 200
    assert (await deliver(clerk_client, older)).status_code == 200  # acknowledged, so Svix stops retrying
    doc = await users.find_one({"_id": USER})
    assert (doc["userEmail"], doc["metadata"]) == ("new@example.com", {"plan": "pro"})


async def test_a_redelivered_message_is_answered_as_before_and_not_applied_again(
    clerk_client: httpx.AsyncClient, users: Any
) -> None:
    made = int(time.time() * 1000)
    first = webhook("user.updated", clerk_user(USER, "first@example.com"), msg_id="msg_redelivered", timestamp_ms=made)
    # Another change in the same millisecond: event times cannot order the two.
    second = webhook("user.updated", clerk_user(USER, "second@example.com"), timestamp_ms=made)
    answer = await deliver(clerk_client, first)
    assert (await deliver(clerk_client, second)).status_code == 200
    body, _ = first
    again = await deliver(clerk_client, (body, signed(body, msg_id="msg_redelivered")))  # Svix's retry, signed afresh
    assert again.status_code == 200 and again.json() == answer.json()
    assert (await users.find_one({"_id": USER}))["userEmail"] == "second@example.com"


async def test_user_deleted_for_a_user_never_seen_keeps_their_still_valid_token_out(
    clerk_client: httpx.AsyncClient, fake_clerk: FakeClerk, users: Any, ledger: None
) -> None:
    unseen = "user_2deletedbeforefirstsight0"
    token = fake_clerk.token(unseen)  # issued before the deletion, valid for another minute
    made = int(time.time() * 1000)
    gone = {"id": unseen, "object": "user", "deleted": True}
    assert (await deliver(clerk_client, webhook("user.deleted", gone, timestamp_ms=made))).status_code == 200

    refused = await clerk_client.get("/v1/credits", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["detail"] == "this account has been deleted" and refused.json()["request_id"]
    # Its user.created, delivered late, neither revives the account nor grants it credits.
    late = webhook("user.created", clerk_user(unseen, "late@example.com"), timestamp_ms=made - 1_000)
    assert (await deliver(clerk_client, late)).status_code == 200
    doc = await users.find_one({"_id": unseen})
    assert doc["deletedAt"] is not None and doc["userEmail"] == ""
    assert (await clerk_client.get("/v1/credits", headers={"Authorization": f"Bearer {token}"})).status_code == 401


async def test_other_events_are_acknowledged_and_ignored(clerk_client: httpx.AsyncClient, users: Any) -> None:
    response = await deliver(clerk_client, webhook("session.created", {"id": "sess_1", "object": "session"}))
    assert response.status_code == 200 and response.json()["handled"] is False
    assert await users.count_documents({}) == 0


async def test_without_a_webhook_secret_deliveries_are_refused(client: httpx.AsyncClient) -> None:
    response = await deliver(client, webhook("user.created", clerk_user(USER, "a@example.com")))
    assert response.status_code == 503
