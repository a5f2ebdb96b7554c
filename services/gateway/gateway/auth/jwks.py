"""The identity provider's signing keys (a JWKS document), fetched over HTTP and cached.

A token naming a `kid` the cache lacks causes a refetch (keys rotate), but at most one per
`min_refresh_s`, so a flood of tokens with made-up `kid`s cannot turn the gateway into a
load generator against the provider. Concurrent lookups share one fetch. A failed fetch
keeps serving the keys already known.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 5.0


class JwksCache:
    def __init__(
        self,
        url: str,
        *,
        ttl_s: float,
        min_refresh_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self._ttl_s = ttl_s
        self._min_refresh_s = min_refresh_s
        self._client = httpx.AsyncClient(transport=transport, timeout=FETCH_TIMEOUT_S)
        self._keys: dict[str, RSAPublicKey] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def key(self, kid: str) -> RSAPublicKey | None:
        """The RSA key with this `kid`, refetching the set if it is stale or lacks it (rate-bounded)."""
        if kid in self._keys and not self._stale():
            return self._keys[kid]
        async with self._lock:
            wanted = kid not in self._keys or self._stale()
            if wanted and time.monotonic() - self._fetched_at >= self._min_refresh_s:
                await self._fetch()
        return self._keys.get(kid)

    def _stale(self) -> bool:
        return time.monotonic() - self._fetched_at >= self._ttl_s

    async def _fetch(self) -> None:
        # The attempt counts even when it fails: an unreachable provider is not hammered either.
        self._fetched_at = time.monotonic()
        self.fetches += 1
        try:
            response = await self._client.get(self.url, headers={"Accept": "application/json"})
            response.raise_for_status()
            self._keys = _rsa_keys(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
            log.warning(
                "JWKS fetch failed; keeping the keys already known", extra={"url": self.url, "error": repr(exc)}
            )
            return
        log.info("JWKS fetched", extra={"url": self.url, "kids": sorted(self._keys)})

    async def aclose(self) -> None:
        await self._client.aclose()


def _rsa_keys(document: Any) -> dict[str, RSAPublicKey]:
    """The RS256 signing keys of a JWKS document, by kid; anything else in it is ignored."""
    keys: dict[str, RSAPublicKey] = {}
    for jwk in jwt.PyJWKSet.from_dict(document).keys:
        usable = jwk.key_type == "RSA" and jwk.public_key_use in (None, "sig")
        if usable and jwk.key_id and jwk.algorithm_name == "RS256" and isinstance(jwk.key, RSAPublicKey):
            keys[jwk.key_id] = jwk.key
    return keys
