"""Clerk session tokens through the whole HTTP stack: the attack matrix (each → 401), and the
real thing → the user, created on first sight in the users collection."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pymongo import AsyncMongoClient

from credits.settings import CreditsSettings
from gateway.auth.dev_issuer import DevIssuer
from gateway.settings import GatewaySettings
from tests.support.clerk import FakeClerk
from tests.support.services import in_process

pytestmark = pytest.mark.integration

USER = "user_2attackmatrix0000000000"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with_public_key(clerk: FakeClerk) -> str:
    """The classic key-confusion forgery: HMAC-sign with the RSA public key as the secret."""
    pem = (
        clerk.private_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": clerk.kid}).encode())
    payload = _b64(json.dumps(clerk.claims(USER)).encode())
    signature = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def tampered(clerk: FakeClerk) -> str:
    header, _, signature = clerk.token(USER).split(".")
    forged = _b64(json.dumps(clerk.claims("user_2theadmin000000000000000")).encode())
    return f"{header}.{forged}.{signature}"


def unknown_kid(clerk: FakeClerk) -> str:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(clerk.claims(USER), stranger, algorithm="RS256", headers={"kid": "ins_notinthejwks"})


def dev_issuer_token(settings: GatewaySettings) -> str:
    return DevIssuer(issuer=settings.dev_issuer, key_file=settings.dev_issuer_key_file).token(
        email="dev@example.com", role="admin"
    )


def now() -> int:
    return int(time.time())


Maker = Callable[[FakeClerk, GatewaySettings], str]
INVALID, UNKNOWN_KEY, FOREIGN = "invalid token", "token signed by an unknown key", "token from another issuer"
# attack → (how to make the token, the 401's detail)
ATTACKS: dict[str, tuple[Maker, str]] = {
    "alg-none": (lambda c, _: jwt.encode(c.claims(USER), None, algorithm="none", headers={"kid": c.kid}), INVALID),
    "hs256-signed-with-the-public-key": (lambda c, _: hs256_with_public_key(c), INVALID),
    "expired": (lambda c, _: c.token(USER, iat=now() - 600, nbf=now() - 600, exp=now() - 120), "token expired"),
    "not-yet-valid": (lambda c, _: c.token(USER, nbf=now() + 120, exp=now() + 300), "token not yet valid"),
    "wrong-issuer": (lambda c, _: c.token(USER, iss="https://clerk.evil.example"), FOREIGN),
    "wrong-azp": (lambda c, _: c.token(USER, azp="https://evil.example"), "token issued for another origin (azp)"),
    "no-azp": (lambda c, _: c.token(USER, azp=None), "token issued for another origin (azp)"),
    "unknown-kid": (lambda c, _: unknown_kid(c), UNKNOWN_KEY),
    "right-kid-wrong-key": (
        lambda c, _: jwt.encode(
            c.claims(USER),
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            algorithm="RS256",
            headers={"kid": c.kid},
        ),
        INVALID,
    ),
    "tampered-payload": (lambda c, _: tampered(c), INVALID),
    "missing-sub": (lambda c, _: c.token(None), INVALID),
    "missing-exp": (lambda c, _: c.token(USER, exp=None), INVALID),
    "dev-issuer-while-clerk-is-configured": (lambda _, s: dev_issuer_token(s), FOREIGN),
    "machine-token": (lambda _c, _s: "mt_" + "a" * 40, "machine tokens are not accepted here"),
}


@pytest.fixture
async def credits_service(clerk_settings: GatewaySettings) -> AsyncIterator[None]:
    common = clerk_settings.model_dump(include={"amqp_url", "redis_url", "bus_namespace", "mongodb_url"})
    settings = CreditsSettings(**common, mongodb_database=clerk_settings.mongodb_database, signup_credits=7)
    async with in_process("credits", settings):
        yield


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_each_attack_is_401(
    clerk_client: httpx.AsyncClient, fake_clerk: FakeClerk, clerk_settings: GatewaySettings, attack: str
) -> None:
    make, detail = ATTACKS[attack]
    response = await clerk_client.get(
        "/v1/credits", headers={"Authorization": f"Bearer {make(fake_clerk, clerk_settings)}"}
    )
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    problem = response.json()
    assert (problem["detail"], problem["request_id"]) == (detail, response.headers["x-request-id"])


async def test_a_small_clock_skew_is_tolerated(
    clerk_client: httpx.AsyncClient, fake_clerk: FakeClerk, credits_service: None
) -> None:
    skewed = fake_clerk.token(USER, nbf=int(time.time()) + 10, exp=int(time.time()) - 10 + 60)
    response = await clerk_client.get("/v1/credits", headers={"Authorization": f"Bearer {skewed}"})
    assert response.status_code == 200, response.text


async def test_a_real_session_token_is_the_user_created_on_first_sight(
    clerk_client: httpx.AsyncClient,
    fake_clerk: FakeClerk,
    clerk_settings: GatewaySettings,
    mongodb_url: str,
    credits_service: None,
) -> None:
    token = fake_clerk.token(USER, email="real@example.com")
    response = await clerk_client.get("/v1/credits", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.json()["granted"] == 7
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongodb_url)
    try:
        doc = await mongo[clerk_settings.mongodb_database]["users"].find_one({"_id": USER})
    finally:
        await mongo.close()
    assert doc is not None
    assert (doc["clerkUserId"], doc["userEmail"], doc["role"], doc["metadata"]) == (
        USER,
        "real@example.com",
        "user",
        {},
    )
    assert doc["createdAt"] and doc["updatedAt"]


async def test_unknown_kids_cannot_make_the_gateway_hammer_the_jwks(
    clerk_client: httpx.AsyncClient, fake_clerk: FakeClerk, clerk_settings: GatewaySettings
) -> None:
    for _ in range(20):
        response = await clerk_client.get("/v1/credits", headers={"Authorization": f"Bearer {unknown_kid(fake_clerk)}"})
        assert response.status_code == 401
    assert fake_clerk.fetches == 1  # the first look, then nothing within CLERK_JWKS_MIN_REFRESH_S


async def test_dev_issuer_jwks_is_gone_while_clerk_is_configured(clerk_client: httpx.AsyncClient) -> None:
    assert (await clerk_client.get("/.well-known/jwks.json")).status_code == 404
