"""Clerk session tokens: RS256 JWTs signed by a key from the instance's JWKS.

Checked: the algorithm (RS256 only, so `none` and HS256-with-the-public-key are refused),
the signature by the key the token's `kid` names, `exp`/`nbf`/`iat` with a small leeway,
`iss` (exactly the configured issuer), `azp` (one of the allowed origins, when configured)
and the presence of `sub`. The decode and `azp` check are clerk-backend-api's
`verify_token`, given the key networkless; fetching and caching the JWKS is ours
(`JwksCache`), because the SDK's fetch is tied to the Backend API secret.

A Clerk token carries no role: roles live in the users collection (see `auth/users.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import jwt
from clerk_backend_api.security.machine import is_machine_token
from clerk_backend_api.security.types import TokenVerificationError, TokenVerificationErrorReason, VerifyTokenOptions
from clerk_backend_api.security.verifytoken import verify_token
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from common.contracts import Role
from common.errors import Unauthenticated
from gateway.auth.jwks import JwksCache

REQUIRED_CLAIMS = ("sub", "iss", "exp", "iat")
_REASONS = {
    TokenVerificationErrorReason.TOKEN_EXPIRED: "token expired",
    TokenVerificationErrorReason.TOKEN_NOT_ACTIVE_YET: "token not yet valid",
    TokenVerificationErrorReason.TOKEN_IAT_IN_THE_FUTURE: "token not yet valid",
    TokenVerificationErrorReason.TOKEN_INVALID_AUTHORIZED_PARTIES: "token issued for another origin (azp)",
}


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a verified token says the caller is. `role` is set only by an issuer trusted to
    assert roles (the development issuer); otherwise the users collection decides."""

    id: str
    email: str | None
    role: Role | None
    provider: Literal["clerk", "development"]
    expires: float | None = None  # the token's `exp` (seconds since the epoch), once verified


class ClerkTokens:
    def __init__(self, *, issuer: str, jwks: JwksCache, authorized_parties: list[str], leeway_s: int) -> None:
        self.issuer = issuer
        self._jwks = jwks
        self._parties = list(authorized_parties) or None
        self._leeway_ms = leeway_s * 1000

    async def aclose(self) -> None:
        await self._jwks.aclose()

    async def verify(self, token: str) -> Identity:
        if is_machine_token(token):
            raise Unauthenticated("machine tokens are not accepted here")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated("invalid token") from exc
        # Early refusals before any key lookup, so foreign tokens never cause a JWKS fetch.
        if header.get("alg") != "RS256":
            raise Unauthenticated("invalid token")
        if unverified.get("iss") != self.issuer:
            raise Unauthenticated("token from another issuer")
        kid = header.get("kid")
        key = await self._jwks.key(kid) if isinstance(kid, str) and kid else None
        if key is None:
            raise Unauthenticated("token signed by an unknown key")
        options = VerifyTokenOptions(
            jwt_key=_pem(key), authorized_parties=self._parties, clock_skew_in_ms=self._leeway_ms
        )
        try:
            claims = verify_token(token, options)
        except TokenVerificationError as exc:
            raise Unauthenticated(_REASONS.get(exc.reason, "invalid token")) from exc
        missing = [c for c in REQUIRED_CLAIMS if claims.get(c) in (None, "")]
        if missing or claims["iss"] != self.issuer:
            raise Unauthenticated("invalid token")
        subject, email = claims["sub"], claims.get("email")
        if not isinstance(subject, str) or len(subject) > 128:
            raise Unauthenticated("invalid token")
        return Identity(
            id=subject,
            email=email if isinstance(email, str) and email else None,
            role=None,
            provider="clerk",
            expires=expiry(claims),
        )


def expiry(claims: dict[str, Any]) -> float | None:
    """A verified token's `exp` as seconds since the epoch (None if it is not a number)."""
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def _pem(key: RSAPublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
