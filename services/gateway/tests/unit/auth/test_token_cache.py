import time
from pathlib import Path

import pytest

from common.errors import Unauthenticated
from gateway.auth import token_cache
from gateway.auth.caller import TokenVerifier
from gateway.auth.clerk import Identity
from gateway.auth.dev_issuer import DevIssuer
from gateway.auth.token_cache import VerifiedTokens

pytestmark = pytest.mark.unit

ALICE = Identity(id="user_alice", email="a@example.com", role=None, provider="clerk", expires=None)


@pytest.fixture
def issuer(tmp_path: Path) -> DevIssuer:
    return DevIssuer(issuer="urn:test", key_file=tmp_path / "key.pem")


def counting(verifier: TokenVerifier) -> list[str]:
    calls: list[str] = []
    verify = verifier.verify

    def counted(token: str) -> Identity:
        calls.append(token)
        return verify(token)

    verifier.verify = counted  # type: ignore[method-assign]
    return calls


async def test_a_token_is_verified_once_then_known(issuer: DevIssuer) -> None:
    verifier = TokenVerifier(dev_issuer=issuer, leeway_s=5)
    calls = counting(verifier)
    token = issuer.token(email="a@example.com", role="user", ttl_s=600)
    first, second = await verifier.authenticate(token), await verifier.authenticate(token)
    assert first == second and first.email == "a@example.com"
    assert first.expires == pytest.approx(time.time() + 600, abs=5)
    assert len(calls) == 1


async def test_refused_tokens_are_not_kept(issuer: DevIssuer, tmp_path: Path) -> None:
    verifier = TokenVerifier(dev_issuer=issuer, leeway_s=5)
    calls = counting(verifier)
    stranger = DevIssuer(issuer="urn:test", key_file=tmp_path / "other.pem").token(email="a@example.com", role="user")
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            await verifier.authenticate(stranger)
    assert len(calls) == 2 and len(verifier.verified) == 0


def test_an_entry_ends_with_the_tokens_exp() -> None:
    cache = VerifiedTokens(max_age_s=3600)
    cache.put("t", ALICE, expires=time.time() + 0.05)
    assert cache.get("t") == ALICE
    time.sleep(0.06)
    assert cache.get("t") is None and len(cache) == 0


def test_an_entry_never_outlives_the_max_age(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = VerifiedTokens(max_age_s=60)
    cache.put("t", ALICE, expires=time.time() + 3600)
    later = time.monotonic() + 61
    monkeypatch.setattr(token_cache.time, "monotonic", lambda: later)
    assert cache.get("t") is None


def test_the_cache_is_bounded_and_drops_the_oldest() -> None:
    cache = VerifiedTokens(max_tokens=2)
    for token in ("a", "b", "c"):
        cache.put(token, ALICE, expires=time.time() + 60)
    assert len(cache) == 2
    assert cache.get("a") is None and cache.get("b") == ALICE and cache.get("c") == ALICE


def test_other_tokens_miss() -> None:
    cache = VerifiedTokens()
    cache.put("header.payload.signature", ALICE, expires=time.time() + 60)
    assert cache.get("header.payload.signaturf") is None
