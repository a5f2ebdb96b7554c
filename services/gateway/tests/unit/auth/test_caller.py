import time
from pathlib import Path

import jwt
import pytest

from common.errors import Unauthenticated
from gateway.auth.caller import TokenVerifier
from gateway.auth.dev_issuer import DevIssuer

pytestmark = pytest.mark.unit


@pytest.fixture
def issuer(tmp_path: Path) -> DevIssuer:
    return DevIssuer(issuer="urn:test", key_file=tmp_path / "key.pem")


@pytest.fixture
def verifier(issuer: DevIssuer) -> TokenVerifier:
    return TokenVerifier(dev_issuer=issuer, leeway_s=5)


def test_valid_token_gives_the_actor(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    actor = verifier.verify(issuer.token(email="a@example.com", role="admin"))
    assert (actor.email, actor.role) == ("a@example.com", "admin")
    assert (
        actor.id.startswith("dev_") and actor.id == verifier.verify(issuer.token(email="A@example.com", role="user")).id
    )


def test_key_file_is_reused_across_processes(tmp_path: Path) -> None:
    first = DevIssuer(issuer="urn:test", key_file=tmp_path / "key.pem")
    second = DevIssuer(issuer="urn:test", key_file=tmp_path / "key.pem")
    assert first.kid == second.kid
    assert TokenVerifier(dev_issuer=second, leeway_s=0).verify(first.token(email="a@example.com", role="user"))


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(
            lambda i: i.token(email="a@example.com", role="user", ttl_s=60, now=time.time() - 3600), id="expired"
        ),
        pytest.param(lambda i: i.token(email="a@example.com", role="user", iss="urn:someone-else"), id="wrong-issuer"),
        pytest.param(lambda i: "not.a.jwt", id="malformed"),
        pytest.param(lambda i: i.token(email="a@example.com", role="root"), id="unknown-role"),
        pytest.param(
            lambda i: jwt.encode(
                {"sub": "x", "iss": "urn:test", "exp": time.time() + 60, "iat": time.time()},
                "k" * 32,
                algorithm="HS256",
                headers={"kid": i.kid},
            ),
            id="hs256",
        ),
        pytest.param(
            lambda i: jwt.encode(
                {"sub": "x", "iss": "urn:test", "exp": time.time() + 60, "iat": time.time()},
                None,
                algorithm="none",
                headers={"kid": i.kid},
            ),
            id="alg-none",
        ),
    ],
)
def test_bad_tokens_are_refused(issuer: DevIssuer, verifier: TokenVerifier, make_token) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Unauthenticated):
        verifier.verify(make_token(issuer))


def test_token_from_another_key_is_refused(tmp_path: Path, verifier: TokenVerifier) -> None:
    stranger = DevIssuer(issuer="urn:test", key_file=tmp_path / "other.pem")
    with pytest.raises(Unauthenticated):
        verifier.verify(stranger.token(email="a@example.com", role="user"))


def test_tampered_payload_is_refused(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    header, _, signature = issuer.token(email="a@example.com", role="user").split(".")
    forged_payload = jwt.utils.base64url_encode(
        b'{"sub":"dev_admin","email":"a@example.com","role":"admin","iss":"urn:test","exp":9999999999,"iat":1}'
    ).decode()
    with pytest.raises(Unauthenticated):
        verifier.verify(f"{header}.{forged_payload}.{signature}")


def test_no_issuer_configured_refuses_everything(issuer: DevIssuer) -> None:
    with pytest.raises(Unauthenticated):
        TokenVerifier(dev_issuer=None, leeway_s=0).verify(issuer.token(email="a@example.com", role="user"))
