"""The delivery policy (which output URLs may be fetched) and how a checked host is connected to."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from common.errors import UpstreamFailed
from imagegen.providers.delivery import DeliveryPolicy, public
from imagegen.providers.fetch import OutputFetcher

pytestmark = pytest.mark.unit

PUBLIC = "93.184.215.14"


@pytest.mark.parametrize(
    "url",
    [
        "https://replicate.delivery/pbxt/abc/out-0.png",
        "https://pbxt.replicate.delivery/abc/out-0.png",
        "https://PBXT.Replicate.Delivery/abc/out-0.png",
    ],
)
def test_replicate_delivery_over_https_is_allowed_by_default(url: str) -> None:
    assert DeliveryPolicy().check(httpx.URL(url)).endswith("replicate.delivery")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://replicate.delivery/out.png", "scheme 'http'"),
        ("ftp://replicate.delivery/out.png", "scheme 'ftp'"),
        ("https://replicate.delivery.evil.example/out.png", "not an allowed delivery host"),
        ("https://evilreplicate.delivery/out.png", "not an allowed delivery host"),
        ("https://user:pw@replicate.delivery/out.png", "not an allowed delivery host"),
        ("https://169.254.169.254/latest/meta-data/", "not an allowed delivery host"),
        ("https://127.0.0.1/out.png", "not an allowed delivery host"),
    ],
)
def test_anything_else_is_refused_by_default(url: str, why: str) -> None:
    with pytest.raises(UpstreamFailed, match=why):
        DeliveryPolicy().check(httpx.URL(url))


def test_a_listed_address_is_trusted_as_written_and_no_other_is() -> None:
    policy = DeliveryPolicy(hosts=("127.0.0.1",), schemes=frozenset({"http"}))
    assert policy.check(httpx.URL("http://127.0.0.1:8080/x.png")) == "127.0.0.1"
    assert policy.listed_address("127.0.0.1") and not policy.listed_address("localhost")
    with pytest.raises(UpstreamFailed):
        policy.check(httpx.URL("http://127.0.0.2/x.png"))


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
    ],
)
def test_private_loopback_link_local_and_their_ipv6_forms_are_not_public(address: str) -> None:
    assert not public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", [PUBLIC, "2606:4700::6810:85e5", "::ffff:93.184.215.14"])
def test_public_addresses_are_public(address: str) -> None:
    assert public(ipaddress.ip_address(address))


class Rebinding:
    """A name server that answers with a public address first and an internal one after."""

    def __init__(self) -> None:
        self.answers = [[PUBLIC], ["169.254.169.254"]]

    async def __call__(self, host: str, port: int) -> list[str]:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


async def test_the_request_goes_to_the_address_that_was_checked_with_the_name_kept_for_tls() -> None:
    sent: list[httpx.Request] = []

    def delivery(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, content=b"png bytes")

    fetcher = OutputFetcher(
        policy=DeliveryPolicy(),
        timeout_s=5,
        max_bytes=1000,
        transport=httpx.MockTransport(delivery),
        resolver=Rebinding(),
    )
    try:
        assert await fetcher.fetch("https://replicate.delivery/pbxt/out-0.png") == b"png bytes"
    finally:
        await fetcher.aclose()
    [request] = sent  # one lookup, and the connection made to what it answered
    assert request.url.host == PUBLIC and request.url.path == "/pbxt/out-0.png"
    assert request.headers["host"] == "replicate.delivery"
    assert request.extensions["sni_hostname"] == "replicate.delivery"


async def test_a_host_that_resolves_to_any_private_address_is_refused() -> None:
    async def mixed(host: str, port: int) -> list[str]:
        return [PUBLIC, "10.0.0.7"]

    def never(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing may be requested")

    fetcher = OutputFetcher(
        policy=DeliveryPolicy(), timeout_s=5, max_bytes=1000, transport=httpx.MockTransport(never), resolver=mixed
    )
    try:
        with pytest.raises(UpstreamFailed, match="resolves to a private or reserved address"):
            await fetcher.fetch("https://replicate.delivery/pbxt/out-0.png")
    finally:
        await fetcher.aclose()


async def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    async def public_only(host: str, port: int) -> list[str]:
        return [PUBLIC]

    def huge(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-length": "5000"}, content=b"x" * 5000)

    fetcher = OutputFetcher(
        policy=DeliveryPolicy(), timeout_s=5, max_bytes=1000, transport=httpx.MockTransport(huge), resolver=public_only
    )
    try:
        with pytest.raises(UpstreamFailed, match="larger than 1000 bytes"):
            await fetcher.fetch("https://replicate.delivery/pbxt/out-0.png")
    finally:
        await fetcher.aclose()
