"""The official `replicate` SDK against the simulator: predictions created, polled, awaited, canceled, failed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import replicate
from replicate.exceptions import ModelError, ReplicateError

from tests.simulator.server import RunningSimulator
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

MODEL = "black-forest-labs/flux-schnell"


@pytest.fixture
async def transport() -> AsyncIterator[httpx.AsyncHTTPTransport]:
    """replicate.Client has no close(): hand it a transport we close ourselves."""
    async with httpx.AsyncHTTPTransport() as shared:
        yield shared


def client(simulator: RunningSimulator, transport: httpx.AsyncBaseTransport | httpx.BaseTransport) -> replicate.Client:
    api = replicate.Client(api_token="t", base_url=simulator.base_urls.replicate, transport=transport)
    api.poll_interval = 0.05
    return api


async def test_prediction_goes_starting_processing_succeeded_while_polled(
    simulator: RunningSimulator, transport: httpx.AsyncHTTPTransport
) -> None:
    api = client(simulator, transport)
    prediction = await api.models.predictions.async_create(model=MODEL, input={"prompt": "a lighthouse"})
    assert prediction.status == "starting"
    assert prediction.output is None

    seen = [prediction.status]
    deadline = time.monotonic() + 5
    while prediction.status not in ("succeeded", "failed", "canceled") and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        await prediction.async_reload()
        if prediction.status != seen[-1]:
            seen.append(prediction.status)

    assert seen == ["starting", "processing", "succeeded"]
    assert prediction.model == MODEL
    assert prediction.started_at and prediction.completed_at and prediction.created_at
    assert prediction.metrics and prediction.metrics["predict_time"] > 0
    assert isinstance(prediction.output, list) and len(prediction.output) == 1
    async with httpx.AsyncClient() as http:
        image = await http.get(prediction.output[0])
    assert image.status_code == 200
    assert image.content.startswith(b"\x89PNG")
    listed = {p["id"]: p["status"] for p in simulator.sim.prediction_list()}
    assert listed == {prediction.id: "succeeded"}


async def test_run_waits_with_prefer_wait_and_returns_the_output(
    simulator: RunningSimulator, transport: httpx.AsyncHTTPTransport
) -> None:
    api = client(simulator, transport)
    output = await api.async_run(MODEL, input={"prompt": "a lighthouse"})

    # http:// outputs stay plain strings (only https:/data: become FileOutput)
    assert isinstance(output, list) and output[0].startswith(simulator.url + "/replicate/files/")
    # Prefer: wait held the create request until the prediction was done: no polling was needed
    assert simulator.sim.count("replicate", "predictions.create") == 1
    assert simulator.sim.count("replicate", "predictions.get") == 0


def test_version_reference_and_sync_run(simulator: RunningSimulator) -> None:
    version = "a" * 64
    with httpx.HTTPTransport() as transport:
        output = client(simulator, transport).run(f"{MODEL}:{version}", input={"prompt": "a lighthouse"})

    assert isinstance(output, list) and output[0].endswith(".png")
    assert simulator.sim.count("replicate", "versions.get") == 1
    [prediction] = simulator.sim.prediction_list()
    assert prediction["version"] == version


async def test_prefer_wait_that_runs_out_reports_starting_then_polling_finishes(
    simulator: RunningSimulator, transport: httpx.AsyncHTTPTransport
) -> None:
    simulator.sim.add_fault("replicate", processing_s=1.5)
    api = client(simulator, transport)
    started = time.monotonic()
    prediction = await api.models.predictions.async_create(model=MODEL, input={"prompt": "slow"}, wait=1)

    assert 0.9 <= time.monotonic() - started < 1.5
    assert prediction.status == "starting"  # what the real API answers when the wait runs out
    await prediction.async_wait()
    assert prediction.status == "succeeded"


async def test_cancel_stops_a_running_prediction(
    simulator: RunningSimulator, transport: httpx.AsyncHTTPTransport
) -> None:
    simulator.sim.add_fault("replicate", processing_s=30)
    api = client(simulator, transport)
    prediction = await api.models.predictions.async_create(model=MODEL, input={"prompt": "never mind"})
    await prediction.async_cancel()
    await prediction.async_reload()

    assert prediction.status == "canceled"
    assert prediction.output is None
    assert simulator.sim.prediction_list()[0]["status"] == "canceled"


async def test_cancel_wakes_a_request_waiting_with_prefer_wait(
    simulator: RunningSimulator, transport: httpx.AsyncHTTPTransport
) -> None:
    simulator.sim.add_fault("replicate", processing_s=30)
    api = client(simulator, transport)
    other = client(simulator, transport)
    started = time.monotonic()

    async def predictions() -> list[dict[str, Any]]:
        return simulator.sim.prediction_list()

    waiting = asyncio.create_task(api.models.predictions.async_create(model=MODEL, input={"prompt": "x"}, wait=20))
    [created] = await wait_until(predictions, lambda found: len(found) == 1, within=5)
    await other.predictions.async_cancel(created["id"])
    prediction = await asyncio.wait_for(waiting, timeout=5)

    assert prediction.status == "canceled"
    assert time.monotonic() - started < 5


async def test_failed_prediction_raises_model_error_from_run(
    simulator: RunningSimulator, transport: httpx.AsyncHTTPTransport
) -> None:
    simulator.sim.add_fault("replicate", fail_prediction=True, times=1, message="CUDA out of memory")
    api = client(simulator, transport)
    with pytest.raises(ModelError) as caught:
        await api.async_run(MODEL, input={"prompt": "too big"})

    assert caught.value.prediction.status == "failed"
    assert caught.value.prediction.error == "CUDA out of memory"
    # the fault was used up: the next one succeeds
    assert await api.async_run(MODEL, input={"prompt": "fine"})


async def test_503_on_create_is_a_replicate_error_and_not_retried(
    simulator: RunningSimulator, transport: httpx.AsyncHTTPTransport
) -> None:
    simulator.sim.add_fault("replicate", status=503, times=1)
    api = client(simulator, transport)
    with pytest.raises(ReplicateError) as caught:
        await api.models.predictions.async_create(model=MODEL, input={"prompt": "x"})

    assert caught.value.status == 503
    assert caught.value.title == "Service unavailable"
    assert caught.value.detail == "Simulated replicate fault (503)."
    assert simulator.sim.count("replicate") == 1


async def test_429_on_a_poll_is_retried_by_the_sdk(
    simulator: RunningSimulator, transport: httpx.AsyncHTTPTransport
) -> None:
    api = client(simulator, transport)
    prediction = await api.models.predictions.async_create(model=MODEL, input={"prompt": "x"})
    simulator.sim.add_fault("replicate", status=429, times=1, endpoint="predictions.get")
    await prediction.async_reload()  # GET is idempotent: the SDK's transport retries it

    assert [c["status"] for c in simulator.sim.calls.recent()] == [201, 429, 200]


async def test_unknown_prediction_is_a_404_problem(
    simulator: RunningSimulator, transport: httpx.AsyncHTTPTransport
) -> None:
    with pytest.raises(ReplicateError) as caught:
        await client(simulator, transport).predictions.async_get("doesnotexist")

    assert caught.value.status == 404
