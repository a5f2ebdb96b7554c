"""The Replicate provider through the official SDK against the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import replicate

from common.errors import UpstreamFailed
from imagegen.providers import GenerationRequest, ReplicateProvider
from tests.simulator.server import RunningSimulator
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

MODEL = "black-forest-labs/flux-schnell"
REQUEST = GenerationRequest(prompt="a red lighthouse", model=MODEL, size="1792x1024")


@pytest.fixture
async def provider(simulator: RunningSimulator) -> AsyncIterator[ReplicateProvider]:
    p = ReplicateProvider(
        api_token="sim-replicate-token",
        base_url=simulator.base_urls.replicate,
        timeout_s=2,
        poll_initial_s=0.05,
        poll_max_s=0.2,
        max_bytes=10_000_000,
    )
    yield p
    await p.aclose()


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
