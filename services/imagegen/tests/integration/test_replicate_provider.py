"""The Replicate provider through the official SDK against the simulator."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote

import httpx
import pytest
import replicate

from common.errors import UpstreamFailed
from imagegen.providers import GenerationRequest, ReplicateProvider
from imagegen.providers.delivery import DeliveryPolicy
from tests.simulator import images
from tests.simulator.server import RunningSimulator
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

MODEL = "black-forest-labs/flux-schnell"
REQUEST = GenerationRequest(prompt="a red lighthouse", model=MODEL, size="1792x1024")


# The simulator is the delivery host, listed explicitly, as a development set-up would list it.
SIMULATOR_DELIVERY = DeliveryPolicy(hosts=("127.0.0.1",), schemes=frozenset({"http"}))


@asynccontextmanager
async def replicate_provider(
    simulator: RunningSimulator, delivery: DeliveryPolicy = SIMULATOR_DELIVERY, max_bytes: int = 10_000_000
) -> AsyncIterator[ReplicateProvider]:
    p = ReplicateProvider(
        api_token="sim-replicate-token",
        base_url=simulator.base_urls.replicate,
        timeout_s=2,
        poll_initial_s=0.05,
        poll_max_s=0.2,
        max_bytes=max_bytes,
        delivery=delivery,
    )
    try:
        yield p
    finally:
        await p.aclose()


@pytest.fixture
async def provider(simulator: RunningSimulator) -> AsyncIterator[ReplicateProvider]:
    async with replicate_provider(simulator) as p:
        yield p


class Recorder:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.statuses: list[str] = []

    async def on_started(self, ref: str) -> None:
        self.started.append(ref)

    async def on_status(self, status: str) -> None:
        self.statuses.append(status)


async def test_a_prediction_is_created_polled_and_its_output_fetched(
    provider: ReplicateProvider, simulator: RunningSimulator
) -> None:
    seen = Recorder()
    image = await provider.generate(REQUEST, resume=None, on_started=seen.on_started, on_status=seen.on_status)

    [prediction] = simulator.sim.prediction_list()
    assert seen.started == [prediction["id"]]
    assert seen.statuses == ["starting", "processing", "succeeded"]
    assert prediction["input"] == {
        "prompt": "a red lighthouse",
        "aspect_ratio": "16:9",
        "num_outputs": 1,
        "output_format": "png",
    }
    async with httpx.AsyncClient() as http:
        assert image.data == (await http.get(prediction["output"][0])).content
    assert image.format == "png"
    # polled with a doubling wait: a handful of polls for a prediction of 0.6 s, not one per 50 ms
    assert 2 <= simulator.sim.count("replicate", "predictions.get") <= 8


async def test_a_model_version_is_created_by_version(provider: ReplicateProvider, simulator: RunningSimulator) -> None:
    request = GenerationRequest(prompt="x", model=f"{MODEL}:{'a' * 64}", size="256x256")
    seen = Recorder()
    await provider.generate(request, resume=None, on_started=seen.on_started, on_status=seen.on_status)

    assert simulator.sim.prediction_list()[0]["version"] == "a" * 64


async def test_a_failed_prediction_is_an_upstream_failure_with_the_models_reason(
    provider: ReplicateProvider, simulator: RunningSimulator
) -> None:
    simulator.sim.add_fault("replicate", fail_prediction=True, message="NSFW content detected")
    seen = Recorder()
    with pytest.raises(UpstreamFailed, match="NSFW content detected"):
        await provider.generate(REQUEST, resume=None, on_started=seen.on_started, on_status=seen.on_status)


async def test_a_refused_create_is_an_upstream_failure_naming_the_status(
    provider: ReplicateProvider, simulator: RunningSimulator
) -> None:
    simulator.sim.add_fault("replicate", status=422, endpoint="predictions.create", message="- prompt: too long")
    seen = Recorder()
    with pytest.raises(UpstreamFailed) as failed:
        await provider.generate(REQUEST, resume=None, on_started=seen.on_started, on_status=seen.on_status)
    assert failed.value.extra["provider_status"] == 422 and "too long" in failed.value.detail
    assert seen.started == []


async def test_a_prediction_that_cannot_be_followed_is_canceled(
    provider: ReplicateProvider, simulator: RunningSimulator
) -> None:
    simulator.sim.add_fault("replicate", processing_s=30)
    simulator.sim.add_fault("replicate", status=500, endpoint="predictions.get", times=-1)
    seen = Recorder()
    with pytest.raises(UpstreamFailed, match="stopped answering"):
        await provider.generate(REQUEST, resume=None, on_started=seen.on_started, on_status=seen.on_status)

    assert [p["status"] for p in simulator.sim.prediction_list()] == ["canceled"]


async def test_a_started_prediction_is_resumed_not_created_again(
    provider: ReplicateProvider, simulator: RunningSimulator
) -> None:
    async with httpx.AsyncHTTPTransport() as transport:
        api = replicate.Client(api_token="t", base_url=simulator.base_urls.replicate, transport=transport)
        earlier = await api.models.predictions.async_create(model=MODEL, input={"prompt": "from before a crash"})
    seen = Recorder()
    image = await provider.generate(REQUEST, resume=earlier.id, on_started=seen.on_started, on_status=seen.on_status)

    assert simulator.sim.count("replicate", "predictions.create") == 1
    assert seen.started == [] and image.data.startswith(b"\x89PNG")


async def test_cancel_stops_a_running_prediction(provider: ReplicateProvider, simulator: RunningSimulator) -> None:
    simulator.sim.add_fault("replicate", processing_s=30)
    async with httpx.AsyncHTTPTransport() as transport:
        api = replicate.Client(api_token="t", base_url=simulator.base_urls.replicate, transport=transport)
        running = await api.models.predictions.async_create(model=MODEL, input={"prompt": "x"})
    await provider.cancel(running.id)

    async def statuses() -> list[str]:
        return [p["status"] for p in simulator.sim.prediction_list()]

    await wait_until(statuses, lambda s: s == ["canceled"], within=5)


# -- where the output file may come from (a model's output names any URL it likes) --------------


async def generate(provider: ReplicateProvider) -> bytes:
    seen = Recorder()
    image = await provider.generate(REQUEST, resume=None, on_started=seen.on_started, on_status=seen.on_status)
    return image.data


def on_loopback_by_name(simulator: RunningSimulator) -> str:
    """The prediction's own file, named through `localhost`: a loopback address, as an internal service's would be."""
    return f"http://localhost:{simulator.port}/replicate/files/{{id}}.png"


def redirect_to(simulator: RunningSimulator, url: str) -> str:
    return f"{simulator.url}/replicate/redirect?to={quote(url, safe=':/{}')}"


@pytest.mark.parametrize(
    "output_url",
    [
        "http://localhost:{port}/replicate/files/{{id}}.png",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://10.0.0.5/internal.png",
        "http://[::ffff:127.0.0.1]:{port}/replicate/files/{{id}}.png",
    ],
)
async def test_an_output_url_outside_the_delivery_hosts_is_not_fetched(
    provider: ReplicateProvider, simulator: RunningSimulator, output_url: str
) -> None:
    simulator.sim.output_url = output_url.format(port=simulator.port)
    with pytest.raises(UpstreamFailed, match="is not an allowed delivery host"):
        await generate(provider)


async def test_a_delivery_host_name_that_resolves_to_a_private_address_is_not_fetched(
    simulator: RunningSimulator,
) -> None:
    # `localhost` is listed, as a delivery host whose DNS now answers with an internal address would be.
    listed = DeliveryPolicy(hosts=("127.0.0.1", "localhost"), schemes=frozenset({"http"}))
    simulator.sim.output_url = on_loopback_by_name(simulator)
    async with replicate_provider(simulator, listed) as provider:
        with pytest.raises(UpstreamFailed, match="resolves to a private or reserved address"):
            await generate(provider)


@pytest.mark.parametrize(
    "target", ["http://localhost:{port}/replicate/files/{{id}}.png", "http://169.254.169.254/latest/meta-data/"]
)
async def test_a_redirect_to_a_private_address_is_not_followed(
    provider: ReplicateProvider, simulator: RunningSimulator, target: str
) -> None:
    simulator.sim.output_url = redirect_to(simulator, target.format(port=simulator.port))
    with pytest.raises(UpstreamFailed, match="is not an allowed delivery host"):
        await generate(provider)


async def test_a_redirect_within_the_delivery_hosts_is_followed(
    provider: ReplicateProvider, simulator: RunningSimulator
) -> None:
    simulator.sim.output_url = redirect_to(simulator, f"{simulator.url}/replicate/files/{{id}}.png")
    assert (await generate(provider)).startswith(b"\x89PNG")


async def test_by_default_only_https_from_replicates_delivery_hosts_is_fetched(simulator: RunningSimulator) -> None:
    async with replicate_provider(simulator, DeliveryPolicy()) as provider:
        with pytest.raises(UpstreamFailed, match="scheme 'http' is not allowed"):
            await generate(provider)


async def test_an_oversized_output_is_refused_while_it_streams(simulator: RunningSimulator) -> None:
    simulator.sim.output_url = f"{simulator.url}/replicate/files/large.png?bytes=5000000"
    async with replicate_provider(simulator, max_bytes=100_000) as provider:
        with pytest.raises(UpstreamFailed, match="larger than 100000 bytes"):
            await generate(provider)


async def test_an_oversized_inline_output_is_refused_before_it_is_decoded(simulator: RunningSimulator) -> None:
    inline = DeliveryPolicy(hosts=("127.0.0.1",), schemes=frozenset({"http", "data"}))
    padded = images.render_png("inline") + bytes(200_000)  # still a readable PNG: what follows its end is ignored
    simulator.sim.output_url = "data:image/png;base64," + base64.b64encode(padded).decode()
    async with replicate_provider(simulator, inline, max_bytes=100_000) as provider:
        with pytest.raises(UpstreamFailed, match="larger than 100000 bytes"):
            await generate(provider)
