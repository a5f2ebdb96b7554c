"""Image generation through the whole system, as processes, with Replicate and Cloudinary
replaced at their HTTP boundary by the provider simulator (the official SDKs pointed at it
by REPLICATE_BASE_URL and CLOUDINARY_URL's upload_prefix).

One stack serves the whole module (each test has users of its own); the simulator is reset
before every test, so its predictions and assets are each test's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import openai
import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from devstack import Stack
from tests.e2e.conftest import running_stack
from tests.simulator.server import RunningSimulator
from tests.support.client import bearer, poll

pytestmark = pytest.mark.e2e

CREDITS = 50
PRICE = 5
FAILED_JOB_S = 20


@pytest.fixture(scope="module")
def image_stack(
    simulator_server: RunningSimulator,
    mongodb_url: str,
    amqp_url: str,
    plain_redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    urls = simulator_server.base_urls
    data = tmp_path_factory.mktemp("image-stack")
    env = {
        "REPLICATE_API_TOKEN": "sim-replicate-token",
        "REPLICATE_BASE_URL": urls.replicate,
        "CLOUDINARY_URL": urls.cloudinary,
        "IMAGE_OUTPUT_HOSTS": "127.0.0.1",  # the simulator delivers the files, over plain http
        "IMAGE_OUTPUT_SCHEMES": "http",
        "IMAGE_HTTP_TIMEOUT_S": "2",
        "IMAGE_POLL_INITIAL_S": "0.1",
        "IMAGE_POLL_MAX_S": "0.5",
        "IMAGE_LEASE_S": "2",
        "IMAGE_SWEEP_INTERVAL_S": "0.5",
        "IMAGE_JOB_TIMEOUT_S": "60",
        "IMAGE_DATA_DIR": str(data / "images"),
        "SIGNUP_CREDITS": str(CREDITS),
    }
    with running_stack(env, mongodb_url=mongodb_url, amqp_url=amqp_url, redis_url=plain_redis_url, data=data) as stack:
        yield stack


@pytest.fixture
async def http(image_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=image_stack.gateway_url, timeout=60) as client:
        yield client


@pytest.fixture
async def db(image_stack: Stack, mongodb_url: str) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True)
    yield client[image_stack.env["MONGODB_DATABASE"]]
    await client.close()


@pytest.fixture
def user(image_stack: Stack) -> dict[str, str]:
    """A user of this test only, with CREDITS to spend."""
    return bearer(image_stack, f"u{uuid.uuid4().hex[:8]}@example.com")


async def settled(http: httpx.AsyncClient, user: dict[str, str]) -> dict[str, int]:
    async def read() -> dict[str, int]:
        return (await http.get("/v1/credits", headers=user)).json()  # type: ignore[no-any-return]

    return await poll(read, lambda b: b["reserved"] == 0, within=15, interval=0.1)


async def finished(http: httpx.AsyncClient, job_id: str, user: dict[str, str]) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        return (await http.get(f"/v1/images/jobs/{job_id}", headers=user)).json()  # type: ignore[no-any-return]

    return await poll(read, lambda j: j.get("status") in ("succeeded", "failed"), within=FAILED_JOB_S, interval=0.1)


async def assets(simulator: RunningSimulator) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{simulator.url}/_sim/cloudinary/assets")).json()["assets"]  # type: ignore[no-any-return]


async def test_a_generated_images_document_file_and_charge_all_exist_and_agree(
    http: httpx.AsyncClient,
    user: dict[str, str],
    simulator: RunningSimulator,
    db: AsyncDatabase[dict[str, Any]],
    image_stack: Stack,
    amqp_url: str,
) -> None:
    async with generated_events(amqp_url, image_stack.namespace) as events:
        response = await http.post(
            "/v1/images?wait=30", json={"prompt": "a red lighthouse at dawn", "name": "Dawn"}, headers=user
        )
        assert response.status_code == 200, response.text
        ready = response.json()
        event = json.loads((await asyncio.wait_for(events.get(), timeout=10)).body)

    document = await db["images"].find_one({"_id": ready["imageId"]})
    job = await db["image_jobs"].find_one({"_id": ready["jobId"]})
    [asset] = await assets(simulator)
    [prediction] = simulator.sim.prediction_list()
    balance = await settled(http, user)
    history = (await http.get("/v1/credits/history", headers=user)).json()["entries"]
    assert document is not None and job is not None

    # the document: the seed's fields and ours, pointing at the stored file
    assert document["url"] == ready["url"] == asset["secure_url"]
    assert (document["name"], document["prompt"], document["status"]) == ("Dawn", "a red lighthouse at dawn", "ready")
    assert (document["userEmail"], document["userName"]) == (job["userEmail"], job["userEmail"].split("@")[0])
    assert (document["model"], document["size"], document["cost"]) == (
        "black-forest-labs/flux-schnell",
        "1024x1024",
        PRICE,
    )
    assert document["createdAt"] and document["updatedAt"]
    # the file: uploaded (signed: the simulator checks) into the user's folder, the provider's very output
    assert asset["public_id"] == document["storage"]["key"] == f"aisaas/{job['userId']}/{ready['imageId']}"
    assert (asset["width"], asset["height"], asset["bytes"], asset["format"]) == (
        document["width"],
        document["height"],
        document["bytes"],
        document["format"],
    )
    assert prediction["status"] == "succeeded" and prediction["input"]["prompt"] == "a red lighthouse at dawn"
    async with httpx.AsyncClient() as files:
        stored = (await files.get(asset["secure_url"])).content
        produced = (await files.get(prediction["output"][0])).content
    assert stored == produced and stored.startswith(b"\x89PNG")
    # the charge: one commit of the image's cost, on the job's reservation
    assert balance == {"available": CREDITS - PRICE, "reserved": 0, "spent": PRICE, "granted": CREDITS}
    assert ready["creditsRemaining"] == CREDITS - PRICE
    commits = [e for e in history if e["kind"] == "commit"]
    assert [(c["amount"], c["reservation_id"]) for c in commits] == [(PRICE, job["reservationId"])]
    # the event: the same image, charged the same
    assert event["type"] == "ImageGenerated" and event["payload"]["charged"] == PRICE
    assert event["payload"]["image"]["id"] == ready["imageId"] and event["payload"]["image"]["url"] == ready["url"]
    assert (
        simulator.sim.count("cloudinary", "upload") == 1 and simulator.sim.count("replicate", "predictions.create") == 1
    )


class MongoRefusesImages:
    """A unique index the test installs on the real server, and a document already holding the
    prompt: inserting the image document fails with E11000, as a real write error would."""

    PROMPT = "a prompt the database refuses"

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db

    async def __aenter__(self) -> None:
        await self.db["images"].create_index("prompt", unique=True, name="test_refuse_prompt")
        await self.db["images"].insert_one({"_id": "blocker", "prompt": self.PROMPT, "status": "blocker"})

    async def __aexit__(self, *_: object) -> None:
        await self.db["images"].delete_one({"_id": "blocker"})
        await self.db["images"].drop_index("test_refuse_prompt")


FAULTS: dict[str, tuple[dict[str, Any], str, str]] = {
    # step: (simulator fault, error code, what the job's failure reason says)
    "replicate error": (
        {"provider": "replicate", "status": 500, "endpoint": "predictions.create"},
        "upstream_failed",
        "Replicate refused the prediction",
    ),
    "replicate prediction failed": (
        {"provider": "replicate", "fail_prediction": True},
        "upstream_failed",
        "the model failed",
    ),
    "replicate timeout": (
        {"provider": "replicate", "hang": True, "hang_s": 15, "endpoint": "predictions.create"},
        "upstream_failed",
        "Replicate did not answer in time",
    ),
    "cloudinary error": (
        {"provider": "cloudinary", "status": 500, "endpoint": "upload"},
        "upstream_failed",
        "image storage refused the upload",
    ),
    "mongodb write error": ({}, "internal", "could not be saved to the gallery"),
}


@pytest.mark.parametrize("step", list(FAULTS))
async def test_a_failure_at_any_step_leaves_no_charge_and_no_orphaned_file(
    step: str,
    http: httpx.AsyncClient,
    user: dict[str, str],
    simulator: RunningSimulator,
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    fault, code, reason = FAULTS[step]
    prompt = MongoRefusesImages.PROMPT if step == "mongodb write error" else f"doomed by {step}"
    if fault:
        simulator.sim.add_fault(**fault)
    async with MongoRefusesImages(db) if step == "mongodb write error" else contextlib.nullcontext():
        accepted = await http.post("/v1/images", json={"prompt": prompt}, headers=user)
        assert accepted.status_code == 202, accepted.text
        job = await finished(http, accepted.json()["id"], user)

    assert (job["status"], job["stage"], job["charged"]) == ("failed", "failed", 0), job
    assert job["error"]["code"] == code and reason in job["error"]["detail"]
    assert job["imageId"] is None and job["url"] is None
    assert await settled(http, user) == {"available": CREDITS, "reserved": 0, "spent": 0, "granted": CREDITS}
    assert await assets(simulator) == []
    assert await db["images"].count_documents({"jobId": job["id"]}) == 0
    assert (await http.get("/v1/images", headers=user)).json()["images"] == []
    history = (await http.get("/v1/credits/history", headers=user)).json()["entries"]
    assert [e["kind"] for e in history][:2] == ["release", "reserve"]
    if step in ("cloudinary error", "mongodb write error"):
        # the rollback deleted the file by the key it had recorded before uploading
        assert simulator.sim.count("cloudinary", "destroy") == 1
    if step == "mongodb write error":
        assert simulator.sim.count("cloudinary", "upload") == 1  # the file was stored, then removed


async def test_a_job_whose_deadline_passes_cancels_its_prediction_and_releases_its_credits(
    http: httpx.AsyncClient, user: dict[str, str], simulator: RunningSimulator
) -> None:
    simulator.sim.add_fault("replicate", processing_s=30)
    response = await http.post(
        "/v1/images", json={"prompt": "a very slow painting"}, headers=user | {"X-Request-Timeout": "2"}
    )
    assert response.status_code == 202, response.text
    job = await finished(http, response.json()["id"], user)

    assert (job["status"], job["charged"], job["error"]["code"]) == ("failed", 0, "deadline_exceeded")
    [prediction] = simulator.sim.prediction_list()
    assert prediction["status"] == "canceled"
    assert simulator.sim.count("replicate", "predictions.cancel") >= 1
    assert await settled(http, user) == {"available": CREDITS, "reserved": 0, "spent": 0, "granted": CREDITS}
    assert await assets(simulator) == []


async def test_another_users_image_id_is_a_404_that_does_not_reveal_it_exists(
    http: httpx.AsyncClient, image_stack: Stack, simulator: RunningSimulator
) -> None:
    alice = bearer(image_stack, f"alice-{uuid.uuid4().hex[:6]}@example.com")
    mallory = bearer(image_stack, f"mallory-{uuid.uuid4().hex[:6]}@example.com")
    ready = (await http.post("/v1/images?wait=30", json={"prompt": "alice's secret"}, headers=alice)).json()

    def body(response: httpx.Response) -> dict[str, Any]:
        assert response.status_code == 404, response.text
        return {k: v for k, v in response.json().items() if k not in ("request_id", "instance")}

    unknown = uuid.uuid4()
    for path, theirs in (
        ("/v1/images/{}", ready["imageId"]),
        ("/v1/images/jobs/{}", ready["jobId"]),
        ("/v1/images/jobs/{}/events", ready["jobId"]),
    ):
        assert body(await http.get(path.format(theirs), headers=mallory)) == body(
            await http.get(path.format(unknown), headers=mallory)
        )
    assert body(await http.delete(f"/v1/images/{ready['imageId']}", headers=mallory)) == body(
        await http.delete(f"/v1/images/{unknown}", headers=mallory)
    )
    assert (await http.get("/v1/images", headers=mallory)).json()["images"] == []
    assert len(await assets(simulator)) == 1  # still there
    assert (await http.get(f"/v1/images/{ready['imageId']}", headers=alice)).json()["prompt"] == "alice's secret"


async def test_deleting_an_image_removes_its_cloudinary_file(
    http: httpx.AsyncClient, user: dict[str, str], simulator: RunningSimulator
) -> None:
    ready = (await http.post("/v1/images?wait=30", json={"prompt": "short-lived"}, headers=user)).json()
    assert len(await assets(simulator)) == 1

    assert (await http.delete(f"/v1/images/{ready['imageId']}", headers=user)).status_code == 204
    assert await assets(simulator) == []
    assert (await http.get(f"/v1/images/{ready['imageId']}", headers=user)).status_code == 404


async def test_progress_events_follow_the_prediction(
    http: httpx.AsyncClient, user: dict[str, str], simulator: RunningSimulator
) -> None:
    simulator.sim.add_fault("replicate", processing_s=1.5)
    job = (await http.post("/v1/images", json={"prompt": "watch me"}, headers=user)).json()
    seen: list[dict[str, Any]] = []
    arrived: list[float] = []
    async with http.stream("GET", f"/v1/images/jobs/{job['id']}/events", headers=user) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line.removeprefix("data: ")))
                arrived.append(time.monotonic())

    assert seen[-1]["status"] == "succeeded"
    assert arrived[-1] - arrived[0] > 1.0  # each event as it happened, not all at the end
    provider = [s["providerStatus"] for s in seen if s["stage"] == "generating"]
    assert "processing" in provider
    assert [s["progress"] for s in seen] == sorted(s["progress"] for s in seen)


async def test_an_imagegen_killed_mid_job_is_resumed_on_the_same_prediction_and_charged_once(
    http: httpx.AsyncClient,
    user: dict[str, str],
    simulator: RunningSimulator,
    image_stack: Stack,
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    simulator.sim.add_fault("replicate", processing_s=3)
    job = (await http.post("/v1/images", json={"prompt": "survive a crash"}, headers=user)).json()
    # killed once the prediction is running and recorded on the job
    await poll(
        lambda: db["image_jobs"].find_one({"_id": job["id"]}),
        lambda d: d is not None and d.get("predictionId") is not None,
        within=10,
        interval=0.05,
    )
    image_stack.processes["imagegen"].kill()
    image_stack.start_service("imagegen")
    done = await finished(http, job["id"], user)

    assert (done["status"], done["charged"]) == ("succeeded", PRICE), done
    assert simulator.sim.count("replicate", "predictions.create") == 1  # resumed, not started again
    record = await db["image_jobs"].find_one({"_id": job["id"]})
    assert record is not None and record["attempts"] >= 2  # a second worker took the job over
    assert len(await assets(simulator)) == 1
    assert await settled(http, user) == {
        "available": CREDITS - PRICE,
        "reserved": 0,
        "spent": PRICE,
        "granted": CREDITS,
    }


async def test_the_openai_sdk_generates_an_image_through_the_gateway(
    image_stack: Stack, user: dict[str, str], simulator: RunningSimulator
) -> None:
    token = user["Authorization"].removeprefix("Bearer ")
    async with openai.AsyncOpenAI(base_url=f"{image_stack.gateway_url}/v1", api_key=token, max_retries=0) as client:
        result = await client.images.generate(prompt="an OpenAI-shaped request", size="1024x1024")

    assert result.data is not None and result.data[0].url == (await assets(simulator))[0]["secure_url"]


@contextlib.asynccontextmanager
async def generated_events(
    amqp_url: str, namespace: str
) -> AsyncIterator[asyncio.Queue[aio_pika.abc.AbstractIncomingMessage]]:
    """ImageGenerated events on the stack's events exchange, into a queue of the test's own."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(f"{namespace}.events", routing_key="ImageGenerated")
        received: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage] = asyncio.Queue()
        await queue.consume(received.put, no_ack=True)
        yield received
    finally:
        await connection.close()


def test_with_nothing_configured_images_are_drawn_locally_and_served_by_the_gateway(
    mongodb_url: str, amqp_url: str, redis_url: str, tmp_path: Path
) -> None:
    """What `make run` gives with no provider keys: the local generator and local storage."""
    env = {"IMAGE_DATA_DIR": str(tmp_path / "images"), "SIGNUP_CREDITS": str(CREDITS)}
    with running_stack(env, mongodb_url=mongodb_url, amqp_url=amqp_url, redis_url=redis_url, data=tmp_path) as stack:
        user = bearer(stack, "offline@example.com")
        with httpx.Client(base_url=stack.gateway_url, timeout=60) as http:
            response = http.post("/v1/images?wait=30", json={"prompt": "no network needed"}, headers=user)
            assert response.status_code == 200, response.text
            ready = response.json()
            image = http.get(f"/v1/images/{ready['imageId']}", headers=user).json()
            served = http.get(ready["url"])
            assert http.delete(f"/v1/images/{ready['imageId']}", headers=user).status_code == 204
            gone = http.get(ready["url"])

    assert (
        ready["url"].startswith(f"{stack.gateway_url}/files/images/") and ready["creditsRemaining"] == CREDITS - PRICE
    )
    assert image["model"] == "local-pillow-1" and (image["width"], image["height"]) == (1024, 1024)
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert len(served.content) == image["bytes"]
    assert gone.status_code == 404 and list((tmp_path / "images").rglob("*.png")) == []
