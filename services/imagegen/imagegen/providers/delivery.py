"""Where a provider's output file may be fetched from (no IO here).

A model's output names the URL of its file, and whoever controls the model controls that URL,
so it is fetched only from the delivery hosts configured (IMAGE_OUTPUT_HOSTS: names, `*.` for
any subdomain, or addresses) over the schemes configured (IMAGE_OUTPUT_SCHEMES; `https` by
default, `data` for inline files, `http` only in development). A host name must resolve to
public addresses only; an address is accepted only when it is listed itself (a development
set-up naming its simulator, `127.0.0.1`). Every redirect is checked the same way.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import httpx

from common.errors import UpstreamFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
DEFAULT_HOSTS = ("replicate.delivery", "*.replicate.delivery")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def as_address(host: str) -> IPAddress | None:
    """The address a host is written as, or None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def public(address: IPAddress) -> bool:
    """A public unicast address: not private, loopback, link-local (cloud metadata), shared,
    reserved, unspecified or multicast, nor an IPv6 form that carries such an IPv4 address."""
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return public(embedded)
    return True


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    hosts: tuple[str, ...] = DEFAULT_HOSTS
    schemes: frozenset[str] = frozenset({"https"})

    def check(self, url: httpx.URL) -> str:
        """The host to connect to for `url` (its ASCII form); UpstreamFailed if the URL may not be fetched."""
        if url.scheme not in self.schemes:
            raise UpstreamFailed(f"the output URL's scheme {url.scheme or 'none'!r} is not allowed")
        host = url.raw_host.decode("ascii").lower()
        if url.userinfo or not host or not any(_matches(host, pattern) for pattern in self.hosts):
            raise UpstreamFailed(f"the output URL's host {host!r} is not an allowed delivery host")
        return host

    def listed_address(self, host: str) -> bool:
        """Whether `host` is an address that is listed itself (trusted as written, never resolved)."""
        address = as_address(host)
        return address is not None and any(as_address(pattern) == address for pattern in self.hosts)


def _matches(host: str, pattern: str) -> bool:
    pattern = pattern.lower()
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and as_address(host) is None
    address = as_address(pattern)
    return host == pattern if address is None else as_address(host) == address
