"""The JWKS cache against a stand-in for Clerk's endpoint (an httpx transport)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gateway.auth.jwks import JwksCache
from tests.support.clerk import FakeClerk

pytestmark = pytest.mark.unit


class Endpoint:
    def __init__(self, clerk: FakeClerk) -> None:
        self.clerk = clerk
        self.calls = 0
        self.failing = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.failing:
            return httpx.Response(503)
        return httpx.Response(200, json=self.clerk.jwks)


@pytest.fixture
def endpoint() -> Endpoint:
    return Endpoint(FakeClerk())


def cache(endpoint: Endpoint, *, min_refresh_s: float, ttl_s: float = 3600) -> JwksCache:
    return JwksCache(
        "https://clerk.test.example/.well-known/jwks.json",
        ttl_s=ttl_s,
        min_refresh_s=min_refresh_s,
        transport=httpx.MockTransport(endpoint),
    )


async def test_keys_are_fetched_once_and_cached(endpoint: Endpoint) -> None:
    jwks = cache(endpoint, min_refresh_s=0)
    first = await jwks.key(endpoint.clerk.kid)
    assert first is not None
    assert await jwks.key(endpoint.clerk.kid) is first
    assert endpoint.calls == 1
    await jwks.aclose()


async def test_concurrent_first_lookups_share_one_fetch(endpoint: Endpoint) -> None:
    jwks = cache(endpoint, min_refresh_s=0)
    keys = await asyncio.gather(*(jwks.key(endpoint.clerk.kid) for _ in range(20)))
    assert all(k is keys[0] for k in keys) and endpoint.calls == 1
    await jwks.aclose()


async def test_an_unknown_kid_refetches_so_a_rotated_key_is_found(endpoint: Endpoint) -> None:
    jwks = cache(endpoint, min_refresh_s=0)
    await jwks.key(endpoint.clerk.kid)
    rotated = endpoint.clerk.add_key()
    assert await jwks.key(rotated) is not None
    assert endpoint.calls == 2
    await jwks.aclose()


async def test_unknown_kids_refetch_at_most_once_per_interval(endpoint: Endpoint) -> None:
    jwks = cache(endpoint, min_refresh_s=3600)
    await jwks.key(endpoint.clerk.kid)
    for i in range(10):
        assert await jwks.key(f"ins_made_up_{i}") is None
    assert endpoint.calls == 1


async def test_a_failed_fetch_keeps_the_known_keys(endpoint: Endpoint) -> None:
    jwks = cache(endpoint, min_refresh_s=0, ttl_s=0)  # every lookup finds the set stale
    known = await jwks.key(endpoint.clerk.kid)
    endpoint.failing = True
    assert await jwks.key(endpoint.clerk.kid) is known
    assert endpoint.calls == 2
    await jwks.aclose()


async def test_non_signing_and_non_rsa_keys_are_ignored(endpoint: Endpoint) -> None:
    document = endpoint.clerk.jwks
    enc = {**document["keys"][0], "kid": "ins_enc", "use": "enc"}
    hmac = {"kty": "oct", "kid": "ins_hmac", "k": "c2VjcmV0", "alg": "HS256"}
    transport = httpx.MockTransport(lambda _: httpx.Response(200, json={"keys": [*document["keys"], enc, hmac]}))
    jwks = JwksCache("https://x/jwks", ttl_s=60, min_refresh_s=3600, transport=transport)
    assert await jwks.key(endpoint.clerk.kid) is not None
    assert await jwks.key("ins_enc") is None and await jwks.key("ins_hmac") is None
    await jwks.aclose()
