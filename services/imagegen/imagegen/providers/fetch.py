"""Fetching a provider's output file, under the delivery policy (`delivery.py`).

Each hop (the URL, then every redirect, at most MAX_REDIRECTS) is checked before it is
requested: scheme, host, and every address the host resolves to. The request then goes to
the address that was checked, not to a second lookup of the name (which a DNS-rebinding host
could answer differently), with the name kept in the `Host` header and as the TLS server
name, so the certificate is still verified for the name. Nothing larger than `max_bytes` is
read: a larger Content-Length is refused at once, a larger body as soon as it grows past it.
No proxy from the environment is used, and no connection is kept for another fetch.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import socket
from collections.abc import Awaitable, Callable

import httpx

from common.errors import UpstreamFailed
from imagegen.providers.delivery import DeliveryPolicy, as_address, public

MAX_REDIRECTS = 3
Resolve = Callable[[str, int], Awaitable[list[str]]]


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, as the system resolver answers."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class OutputFetcher:
    def __init__(
        self,
        *,
        policy: DeliveryPolicy,
        timeout_s: float,
        max_bytes: int,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolve = resolve,
    ) -> None:
        self._policy = policy
        self._max_bytes = max_bytes
        self._resolve = resolver
        self._http = httpx.AsyncClient(
            timeout=timeout_s,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def fetch(self, url: str) -> bytes:
        if url.startswith("data:"):
            return self._inline(url)
        try:
            current = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise UpstreamFailed("the provider's output is not a URL we can fetch") from exc
        try:
            for _ in range(MAX_REDIRECTS + 1):
                host = self._policy.check(current)
                address = await self._address(host, current.port or (443 if current.scheme == "https" else 80))
                request = self._http.build_request(
                    "GET",
                    current.copy_with(host=address),
                    headers={"Host": current.netloc.decode("ascii")},
                    extensions={"sni_hostname": host} if current.scheme == "https" else {},
                )
                response = await self._http.send(request, stream=True)
                try:
                    if response.is_redirect:
                        current = current.join(response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise UpstreamFailed(f"fetching the output failed with status {response.status_code}")
                    return await self._read(response)
                finally:
                    await response.aclose()
        except httpx.InvalidURL as exc:
            raise UpstreamFailed("the output file was redirected to an invalid URL") from exc
        except httpx.HTTPError as exc:
            raise UpstreamFailed("the output file could not be fetched") from exc
        raise UpstreamFailed(f"the output file was redirected more than {MAX_REDIRECTS} times")

    async def _address(self, host: str, port: int) -> str:
        """The address to connect to for `host`: every one it resolves to must be public."""
        if self._policy.listed_address(host):
            return host
        literal = as_address(host)
        try:
            found = [host] if literal is not None else await self._resolve(host, port)
        except OSError as exc:
            raise UpstreamFailed(f"the output host {host!r} does not resolve") from exc
        addresses = [as_address(a.partition("%")[0]) for a in found]  # a link-local IPv6 carries %scope
        if not addresses or not all(a is not None and public(a) for a in addresses):
            raise UpstreamFailed(f"the output host {host!r} resolves to a private or reserved address")
        return str(addresses[0])

    async def _read(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise UpstreamFailed(f"the output is larger than {self._max_bytes} bytes")
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._max_bytes:
                raise UpstreamFailed(f"the output is larger than {self._max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _inline(self, url: str) -> bytes:
        if "data" not in self._policy.schemes:
            raise UpstreamFailed("the output URL's scheme 'data' is not allowed")
        header, _, payload = url.partition(",")
        # base64 holds 3 bytes in 4 characters: refuse before decoding what would be too large.
        if len(payload) * (3 if header.endswith(";base64") else 4) // 4 > self._max_bytes:
            raise UpstreamFailed(f"the output is larger than {self._max_bytes} bytes")
        try:
            return base64.b64decode(payload, validate=True) if header.endswith(";base64") else payload.encode()
        except binascii.Error as exc:
            raise UpstreamFailed("the provider's output is a malformed data URI") from exc
