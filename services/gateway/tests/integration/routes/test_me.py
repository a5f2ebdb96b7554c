"""GET /v1/me: the verified caller as the gateway judges them."""

from __future__ import annotations

import httpx
import pytest

from gateway.auth.dev_issuer import DevIssuer
from tests.support.clerk import FakeClerk

pytestmark = pytest.mark.integration


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_token_that_asserts_a_role_is_judged_with_it(client: httpx.AsyncClient, issuer: DevIssuer) -> None:
    response = await client.get("/v1/me", headers=bearer(issuer.token(email="me@example.com", role="subscriber")))
    assert response.status_code == 200, response.text
    me = response.json()
    assert me == {"id": me["id"], "email": "me@example.com", "role": "subscriber"}
    assert me["id"].startswith("dev_")


async def test_without_a_role_claim_the_stored_role_answers_and_follows_an_admins_change(
    client: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    member = bearer(issuer.token(email="member@example.com", role=None))
    admin = bearer(issuer.token(email="boss@example.com", role="admin"))
    before = (await client.get("/v1/me", headers=member)).json()
    assert before["role"] == "user"
    changed = await client.put(f"/v1/admin/users/{before['id']}/role", json={"role": "subscriber"}, headers=admin)
    assert changed.status_code == 200, changed.text
    assert (await client.get("/v1/me", headers=member)).json()["role"] == "subscriber"


async def test_a_clerk_token_without_an_email_gives_none_not_a_placeholder(
    clerk_client: httpx.AsyncClient, fake_clerk: FakeClerk
) -> None:
    response = await clerk_client.get("/v1/me", headers=bearer(fake_clerk.token("user_me_noemail")))
    assert response.status_code == 200, response.text
    assert response.json() == {"id": "user_me_noemail", "email": None, "role": "user"}


async def test_no_token_or_a_tampered_one_is_a_401_problem(client: httpx.AsyncClient, issuer: DevIssuer) -> None:
    token = issuer.token(email="me@example.com", role="admin")
    head, payload, signature = token.split(".")
    tampered = f"{head}.{payload}.{signature[:-4]}AAAA"
    for headers in ({}, bearer(tampered)):
        response = await client.get("/v1/me", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["request_id"]
