"""The imagegen service's real wiring in-process, with the credits service beside it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pymongo.asynchronous.database import AsyncDatabase

from common.bus import RpcClient
from common.contracts import ImageJob
from common.errors import Conflict, InsufficientCredits, NotFound, Unauthenticated
from common.runtime import Runtime
from credits.settings import CreditsSettings
from services.imagegen.tests.conftest import ImagegenFactory
from services.imagegen.tests.helpers import (
    ADMIN,
    ALICE,
    BOB,
    caller,
    finished,
    generate,
    job_of,
    settled,
    submit,
)
from tests.simulator.server import RunningSimulator
from tests.support.redis_cluster import ON_BOTH_REDIS
from tests.support.services import in_process
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

# The simulator (127.0.0.1, plain http) is the delivery host, listed as a development set-up lists it.
SIMULATOR_DELIVERY = {"image_output_hosts": ["127.0.0.1"], "image_output_schemes": ["http"]}


@ON_BOTH_REDIS
async def test_a_job_is_accepted_at_once_then_generated_and_charged(
    imagegen: ImagegenFactory, credits_service: Runtime, rpc: RpcClient
) -> None:
    succeeded = {"outcome": "succeeded", "model": "local-pillow-1"}
    before = REGISTRY.get_sample_value("aisaas_image_jobs_total", succeeded) or 0
    async with imagegen(local_image_latency_s=0.3):
        accepted = await submit(rpc, generate("a red lighthouse", size="256x256"))
        assert (accepted.status, accepted.cost, accepted.charged, accepted.version) == ("queued", 5, 0, 1)
        done = await finished(rpc, accepted.job_id)

    assert (done.status, done.charged, done.credits_remaining) == ("succeeded", 5, 15)
    assert REGISTRY.get_sample_value("aisaas_image_jobs_total", succeeded) == before + 1
    assert done.image_id is not None and done.url is not None and done.url.endswith(".png")
    assert (await settled(rpc)).model_dump(exclude={"user_id"}) == {
        "available": 15,
        "reserved": 0,
        "spent": 5,
        "granted": 20,
    }


async def test_a_repeated_job_id_is_the_same_job_and_one_charge_and_another_body_is_refused(
    imagegen: ImagegenFactory, credits_service: Runtime, rpc: RpcClient
) -> None:
    job_id = uuid.uuid4()
    async with imagegen():
        first = await submit(rpc, generate("once", job_id=job_id))
        await finished(rpc, job_id)
        again = await submit(rpc, generate("once", job_id=job_id))
        with pytest.raises(Conflict, match="different request"):
            await submit(rpc, generate("twice", job_id=job_id))

    assert again.job_id == first.job_id and again.status == "succeeded"
    assert (await settled(rpc)).spent == 5


async def test_without_enough_credits_no_job_is_stored(
    imagegen: ImagegenFactory, credits_service: Runtime, rpc: RpcClient, db: AsyncDatabase[dict[str, Any]]
) -> None:
    async with imagegen(image_price=21):
        with pytest.raises(InsufficientCredits):
            await submit(rpc, generate())

    assert await db["image_jobs"].count_documents({}) == 0
    assert (await settled(rpc)).available == 20


async def test_unknown_models_and_anonymous_requests_are_refused(
    imagegen: ImagegenFactory, credits_service: Runtime, rpc: RpcClient
) -> None:
    async with imagegen(image_model_prices={"local-pillow-2": 9}):
        with pytest.raises(NotFound, match="not offered"):
            await submit(rpc, generate(model="someone/else"))
        with pytest.raises(Unauthenticated):
            await rpc.call(caller(None).envelope(generate()), reply_model=ImageJob)
        priced = await submit(rpc, generate(model="local-pillow-2"))
    assert priced.cost == 9


async def test_only_the_owner_and_admins_see_a_job(
    imagegen: ImagegenFactory, credits_service: Runtime, rpc: RpcClient
) -> None:
    async with imagegen():
        job = await submit(rpc, generate())
        with pytest.raises(NotFound, match="no such image job"):
            await job_of(rpc, job.job_id, BOB)
        assert (await job_of(rpc, job.job_id, ADMIN)).job_id == job.job_id
        assert (await job_of(rpc, job.job_id, ALICE)).user_id == ALICE.id


async def test_a_credit_hold_that_lapses_before_the_charge_means_no_image_and_no_charge(
    imagegen: ImagegenFactory, common_env: dict[str, Any], rpc: RpcClient, db: AsyncDatabase[dict[str, Any]]
) -> None:
    ledger = CreditsSettings(**common_env, signup_credits=20, reservation_ttl_s=1, sweep_interval_s=0.1)
    async with in_process("credits", ledger), imagegen(local_image_latency_s=2):
        job = await submit(rpc, generate())
        done = await finished(rpc, job.job_id)
        balance = await settled(rpc)

    assert (done.status, done.charged) == ("failed", 0)
    assert done.error is not None and "credit hold lapsed" in done.error.detail
    assert await db["images"].count_documents({}) == 0
    assert balance.model_dump(exclude={"user_id"}) == {"available": 20, "reserved": 0, "spent": 0, "granted": 20}


async def test_a_file_that_cannot_be_deleted_during_a_rollback_is_deleted_later(
    imagegen: ImagegenFactory,
    credits_service: Runtime,
    rpc: RpcClient,
    simulator: RunningSimulator,
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    # The image document is refused (a unique index the test installs), so the job rolls back;
    # the first destroy of the uploaded file fails, so it is left as an orphan for the sweeper.
    await db["images"].create_index("prompt", unique=True)
    await db["images"].insert_one({"_id": "blocker", "prompt": "refused"})
    simulator.sim.add_fault("cloudinary", status=500, endpoint="destroy")
    providers = {
        "image_provider": "replicate",
        "image_storage": "cloudinary",
        "replicate_api_token": "sim-replicate-token",
        "replicate_base_url": simulator.base_urls.replicate,
        "cloudinary_url": simulator.base_urls.cloudinary,
        **SIMULATOR_DELIVERY,
    }
    async with imagegen(**providers):
        job = await submit(rpc, generate("refused"))
        done = await finished(rpc, job.job_id)
        assert (done.status, done.charged) == ("failed", 0)
        await wait_until(
            lambda: _async(simulator.sim.cloudinary_public_ids()), lambda ids: ids == [], within=10, interval=0.1
        )
        record = await wait_until(
            lambda: db["image_jobs"].find_one({"_id": str(job.job_id)}), lambda d: "orphan" not in d, within=5
        )

    assert simulator.sim.count("cloudinary", "upload") == 1 and simulator.sim.count("cloudinary", "destroy") == 2
    assert record["asset"]["key"].startswith("aisaas/user_alice/")
    assert (await settled(rpc)).spent == 0


async def test_a_job_whose_output_is_at_an_internal_address_fails_and_is_not_charged(
    imagegen: ImagegenFactory,
    credits_service: Runtime,
    rpc: RpcClient,
    simulator: RunningSimulator,
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    # The model names its file through `localhost`: served, but at a loopback address, not a delivery host.
    simulator.sim.output_url = f"http://localhost:{simulator.port}/replicate/files/{{id}}.png"
    providers = {
        "image_provider": "replicate",
        "image_storage": "local",
        "replicate_api_token": "sim-replicate-token",
        "replicate_base_url": simulator.base_urls.replicate,
        **SIMULATOR_DELIVERY,
    }
    async with imagegen(**providers):
        job = await submit(rpc, generate())
        done = await finished(rpc, job.job_id)
        balance = await settled(rpc)

    assert (done.status, done.charged) == ("failed", 0)
    assert done.error is not None and done.error.code == "upstream_failed"
    assert "'localhost' is not an allowed delivery host" in done.error.detail
    assert await db["images"].count_documents({}) == 0
    assert balance.model_dump(exclude={"user_id"}) == {"available": 20, "reserved": 0, "spent": 0, "granted": 20}


async def _async[T](value: T) -> T:
    return value
