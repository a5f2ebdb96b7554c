"""Who is calling: the one dependency every route uses to get the verified user.

Identity comes only from a verified bearer token; no header a client sets is trusted.
"""

from __future__ import annotations

from typing import Annotated

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from common.contracts import Actor
from common.errors import Forbidden, Unauthenticated
from gateway.devissuer import DevIssuer

_bearer = HTTPBearer(auto_error=False)


class TokenVerifier:
    """Verifies bearer tokens. Today: the development issuer; the Clerk work extends this."""

    def __init__(self, *, dev_issuer: DevIssuer | None, leeway_s: int) -> None:
        self._dev = dev_issuer
        self._leeway = leeway_s

    def verify(self, token: str) -> Actor:
        if self._dev is None:
            raise Unauthenticated("no token issuer is configured")
        try:
            header = jwt.get_unverified_header(token)
            if header.get("kid") != self._dev.kid:
                raise Unauthenticated("token signed by an unknown key")
            claims = jwt.decode(
                token,
                self._dev.public_key,
                algorithms=["RS256"],
                issuer=self._dev.issuer,
                leeway=self._leeway,
                options={"require": ["sub", "iss", "exp", "iat"]},
            )
            return Actor(id=claims["sub"], email=claims.get("email", ""), role=claims.get("role", "user"))
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token expired") from exc
        except (jwt.InvalidTokenError, ValidationError) as exc:
            raise Unauthenticated("invalid token") from exc


async def current_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Actor:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("missing bearer token")
    verifier: TokenVerifier = request.app.state.verifier
    return verifier.verify(credentials.credentials)


CurrentUser = Annotated[Actor, Depends(current_user)]


async def admin_user(user: CurrentUser) -> Actor:
    if user.role != "admin":
        raise Forbidden("admins only")
    return user


AdminUser = Annotated[Actor, Depends(admin_user)]
