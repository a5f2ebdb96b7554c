"""Who is calling, and what they may do.

Identity comes only from a verified bearer token: Clerk session tokens when Clerk is
configured, otherwise (development only) the local development issuer; a token from the
development issuer is refused while Clerk is configured. No header a client sets is
trusted. The traffic middleware verifies a token once per request (`record_caller`, so rate
limits and idempotency know the user) and routes declare what they need with `CurrentUser`,
`AdminUser` or `require_roles(...)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, get_args

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from common.contracts import Actor, Role
from common.errors import Forbidden, PlatformError, Unauthenticated
from gateway.auth.clerk import ClerkTokens, Identity, expiry
from gateway.auth.dev_issuer import DevIssuer
from gateway.auth.token_cache import VerifiedTokens
from gateway.auth.users import UserDirectory

_bearer = HTTPBearer(auto_error=False)
ROLES: tuple[Role, ...] = get_args(Role)


class TokenVerifier:
    """Verifies bearer tokens: Clerk's when `clerk` is given, else the development issuer's.
    A token verified lately is known without a second check (see `token_cache.py`)."""

    def __init__(self, *, dev_issuer: DevIssuer | None, leeway_s: int, clerk: ClerkTokens | None = None) -> None:
        self._dev = None if clerk is not None else dev_issuer
        self._leeway = leeway_s
        self._clerk = clerk
        self.verified = VerifiedTokens()

    async def aclose(self) -> None:
        if self._clerk is not None:
            await self._clerk.aclose()

    async def authenticate(self, token: str) -> Identity:
        identity = self.verified.get(token)
        if identity is not None:
            return identity
        identity = await self._clerk.verify(token) if self._clerk is not None else self.verify(token)
        if identity.expires is not None:
            self.verified.put(token, identity, expires=identity.expires)
        return identity

    def verify(self, token: str) -> Identity:
        """A development-issuer token (no IO: its key is local)."""
        if self._dev is None:
            raise Unauthenticated("no token issuer is configured" if self._clerk is None else "invalid token")
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
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token expired") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated("invalid token") from exc
        # A development token may assert a role (it is a development tool); without one the users collection decides.
        role, email, subject = claims.get("role"), claims.get("email"), claims["sub"]
        if (role is not None and role not in ROLES) or not isinstance(subject, str) or not 0 < len(subject) <= 128:
            raise Unauthenticated("invalid token")
        return Identity(
            id=subject,
            email=email if isinstance(email, str) and email else None,
            role=role,
            provider="development",
            expires=expiry(claims),
        )


async def authenticate(app_state: Any, token: str) -> Actor:
    """Token → verified identity → the user as the users collection knows them."""
    verifier: TokenVerifier = app_state.verifier
    users: UserDirectory = app_state.users
    return await users.actor(await verifier.authenticate(token))


def known_caller(app_state: Any, token: str) -> Actor | None:
    """The caller when a token verified lately names a user this gateway holds a fresh copy of:
    known with no IO and no signature check. None means `authenticate` must decide."""
    verifier: TokenVerifier = app_state.verifier
    users: UserDirectory = app_state.users
    identity = verifier.verified.get(token)
    if identity is None:
        return None
    try:
        return users.cached_actor(identity)
    except PlatformError:
        return None  # refused (a deleted account): `authenticate` says so in the usual order


async def record_caller(state: dict[str, Any], app_state: Any, token: str | None) -> None:
    """Verify the bearer token, if any, and record the caller (or why the token was refused) in
    the request state; nothing is refused here, routes do that."""
    if token is None:
        return
    try:
        state["actor"] = await authenticate(app_state, token)
    except PlatformError as exc:
        state["auth_error"] = exc


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return (token.strip() or None) if scheme.lower() == "bearer" else None
    return None


BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def current_user(request: Request, credentials: BearerCredentials) -> Actor:
    actor: Actor | None = getattr(request.state, "actor", None)
    if actor is not None:
        return actor
    error: PlatformError | None = getattr(request.state, "auth_error", None)
    if error is not None:
        raise error
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("missing bearer token")
    return await authenticate(request.app.state, credentials.credentials)


CurrentUser = Annotated[Actor, Depends(current_user)]


def require_roles(*roles: Role) -> Callable[[Actor], Awaitable[Actor]]:
    """A dependency admitting only these roles (403 for the others)."""
    allowed = frozenset(roles)

    async def dependency(user: CurrentUser) -> Actor:
        if user.role not in allowed:
            raise Forbidden(f"this needs the role {' or '.join(sorted(allowed))}")
        return user

    return dependency


admin_user = require_roles("admin")
AdminUser = Annotated[Actor, Depends(admin_user)]
