"""Tokens verified lately, so a client that sends the same bearer token on every request pays
for its RS256 signature check and JSON decoding once, not per request.

Entries are keyed by a digest of the token (the cache never holds a usable token), hold only
successes (a refused token, and the JWKS refetch an unknown `kid` may cause, is handled as
without the cache), and last until the token's `exp` but never longer than `max_age_s`, so a
token is checked afresh at least that often. Leeway is not added to `exp`: a token in its
leeway is verified again, with the same outcome as before.
"""

from __future__ import annotations

import hashlib
import time

from gateway.auth.clerk import Identity

MAX_TOKENS = 10_000
MAX_AGE_S = 60.0


class VerifiedTokens:
    def __init__(self, *, max_tokens: int = MAX_TOKENS, max_age_s: float = MAX_AGE_S) -> None:
        self._max_tokens = max_tokens
        self._max_age_s = max_age_s
        # digest → (the token's exp, seconds since the epoch; monotonic end of freshness; identity)
        self._entries: dict[bytes, tuple[float, float, Identity]] = {}

    def get(self, token: str) -> Identity | None:
        key = _digest(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, fresh_until, identity = entry
        if time.time() < expires and time.monotonic() < fresh_until:
            return identity
        del self._entries[key]
        return None

    def put(self, token: str, identity: Identity, *, expires: float) -> None:
        if len(self._entries) >= self._max_tokens:
            del self._entries[next(iter(self._entries))]  # the oldest: dicts keep insertion order
        self._entries[_digest(token)] = (expires, time.monotonic() + self._max_age_s, identity)

    def __len__(self) -> int:
        return len(self._entries)


def _digest(token: str) -> bytes:
    return hashlib.blake2b(token.encode(), digest_size=20).digest()
