"""The image API through the in-process gateway, with the real imagegen and credits services
beside it (offline: the local generator and local storage), on the real broker, Redis and
MongoDB-protocol server."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from credits.settings import CreditsSettings
from gateway.app import create_app
from gateway.auth.dev_issuer import DevIssuer
from gateway.settings import GatewaySettings
from imagegen.settings import ImagegenSettings
from tests.support.client import poll
from tests.support.redis_cluster import ON_BOTH_REDIS
from tests.support.services import in_process

pytestmark = pytest.mark.integration

SMALL = {"prompt": "a red lighthouse", "size": "256x256"}


@pytest.fixture
def gateway_settings(gateway_settings: GatewaySettings, tmp_path: Path) -> GatewaySettings:
    return gateway_settings.model_copy(update={"image_data_dir": tmp_path / "images", "image_job_timeout_s": 30.0})


def imagegen_settings(gateway_settings: GatewaySettings, **overrides: Any) -> ImagegenSettings:
    fields: dict[str, Any] = {
        **gateway_settings.model_dump(
            include={"amqp_url", "redis_url", "redis_cluster", "bus_namespace", "mongodb_url"}
        ),
        "mongodb_database": gateway_settings.mongodb_database,
        "image_data_dir": gateway_settings.image_data_dir,
        "image_provider": "local",
        "image_storage": "local",
        "image_sweep_interval_s": 0.2,
        **overrides,
    }
    return ImagegenSettings(**fields)


@pytest.fixture
async def credits_service(gateway_settings: GatewaySettings) -> AsyncIterator[None]:
    common = gateway_settings.model_dump(
        include={"amqp_url", "redis_url", "redis_cluster", "bus_namespace", "mongodb_url"}
    )
    settings = CreditsSettings(**common, mongodb_database=gateway_settings.mongodb_database, signup_credits=20)
    async with in_process("credits", settings):
        yield


@pytest.fixture
async def images(credits_service: None, gateway_settings: GatewaySettings) -> AsyncIterator[None]:
    """imagegen drawing locally, slowly enough (0.4 s) for its progress to be seen."""
    async with in_process("imagegen", imagegen_settings(gateway_settings, local_image_latency_s=0.4)):
        yield


def bearer(issuer: DevIssuer, email: str, role: str = "user") -> dict[str, str]:
    return {"Authorization": "Bearer " + issuer.token(email=email, role=role)}  # type: ignore[arg-type]


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["request_id"] == response.headers["x-request-id"]
    return problem


async def finished(client: httpx.AsyncClient, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    async def job() -> dict[str, Any]:
        response = await client.get(f"/v1/images/jobs/{job_id}", headers=headers)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    return await poll(job, lambda j: j["status"] in ("succeeded", "failed"), within=20, interval=0.05)


async def credits(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, int]:
    async def read() -> dict[str, int]:
        return (await client.get("/v1/credits", headers=headers)).json()  # type: ignore[no-any-return]

    return await poll(read, lambda b: b["reserved"] == 0, within=10, interval=0.05)


async def generated(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/images?wait=20", json={**SMALL, **body}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_post_is_202_with_the_job_and_its_location_then_the_image_is_made_and_paid_for(
    client: httpx.AsyncClient, issuer: DevIssuer, images: None
) -> None:
    alice = bearer(issuer, "alice@example.com")
    response = await client.post("/v1/images", json=SMALL | {"name": "Lighthouse"}, headers=alice)

    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/images/jobs/{job['id']}"
    assert (job["status"], job["cost"], job["charged"], job["name"]) == ("queued", 5, 0, "Lighthouse")
    done = await finished(client, job["id"], alice)
    assert (done["status"], done["stage"], done["progress"], done["charged"]) == ("succeeded", "done", 100, 5)
    assert done["creditsRemaining"] == 15 and done["error"] is None
    assert done["url"].startswith("http://gateway/files/images/")
    served = await client.get(done["url"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(served.content)).size == (256, 256)
    image = (await client.get(f"/v1/images/{done['imageId']}", headers=alice)).json()
    assert (image["url"], image["name"], image["prompt"], image["cost"]) == (
        done["url"],
        "Lighthouse",
        SMALL["prompt"],
        5,
    )
    assert (image["userEmail"], image["userName"], image["size"], image["status"]) == (
        "alice@example.com",
        "alice",
        "256x256",
        "ready",
    )
    assert await credits(client, alice) == {"available": 15, "reserved": 0, "spent": 5, "granted": 20}


@ON_BOTH_REDIS
async def test_wait_answers_200_with_the_image_and_the_credits_left(
    client: httpx.AsyncClient, issuer: DevIssuer, images: None
) -> None:
    alice = bearer(issuer, "alice@example.com")
    ready = await generated(client, alice)

    assert set(ready) == {"imageId", "url", "creditsRemaining", "jobId"}
    assert ready["creditsRemaining"] == 15
    assert (await client.get(ready["url"])).status_code == 200


async def test_a_short_wait_still_answers_202_with_the_running_job(
    client: httpx.AsyncClient, issuer: DevIssuer, images: None
) -> None:
    alice = bearer(issuer, "alice@example.com")
    response = await client.post("/v1/images?wait=0.1", json=SMALL, headers=alice)

    assert response.status_code == 202, response.text
    assert response.json()["status"] in ("queued", "running")
    assert (await finished(client, response.json()["id"], alice))["status"] == "succeeded"


@ON_BOTH_REDIS
async def test_events_stream_the_jobs_progress_until_it_is_done(
    client: httpx.AsyncClient, issuer: DevIssuer, images: None
) -> None:
    alice = bearer(issuer, "alice@example.com")
    job = (await client.post("/v1/images", json=SMALL, headers=alice)).json()
    async with client.stream("GET", f"/v1/images/jobs/{job['id']}/events", headers=alice) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(await stream.aread())

    kinds = [e["event"] for e in events]
    assert kinds[-1] == "succeeded" and "running" in kinds
    versions = [int(e["id"]) for e in events]
    assert versions == sorted(set(versions))
    last = json.loads(events[-1]["data"])
    assert (last["status"], last["progress"], last["charged"]) == ("succeeded", 100, 5)
    stages = [json.loads(e["data"])["stage"] for e in events]
    assert stages.index("generating") < stages.index("storing") < stages.index("charging") < stages.index("done")


async def test_the_gallery_lists_your_own_images_newest_first_a_page_at_a_time(
    client: httpx.AsyncClient, issuer: DevIssuer, images: None
) -> None:
    alice, bob = bearer(issuer, "alice@example.com"), bearer(issuer, "bob@example.com")
    made = [(await generated(client, alice, name=f"picture {i}"))["imageId"] for i in range(3)]
    await generated(client, bob, name="bob's")

    first = (await client.get("/v1/images?limit=2", headers=alice)).json()
    second = (await client.get(f"/v1/images?limit=2&cursor={first['nextCursor']}", headers=alice)).json()
    assert [i["id"] for i in first["images"] + second["images"]] == made[::-1]
    assert second["nextCursor"] is None
    assert [i["name"] for i in (await client.get("/v1/images", headers=bob)).json()["images"]] == ["bob's"]
    assert_problem(await client.get("/v1/images?user=*", headers=alice), 403)
    everyone = (await client.get("/v1/images?user=*", headers=bearer(issuer, "ops@example.com", "admin"))).json()
    assert len(everyone["images"]) == 4


async def test_another_users_image_or_job_is_a_404_that_reveals_nothing(
    client: httpx.AsyncClient, issuer: DevIssuer, images: None
) -> None:
    alice, bob = bearer(issuer, "alice@example.com"), bearer(issuer, "bob@example.com")
    ready = await generated(client, alice)
    unknown = uuid.uuid4()

    def same(response: httpx.Response) -> dict[str, Any]:
        return {k: v for k, v in assert_problem(response, 404).items() if k not in ("request_id", "instance")}

    assert same(await client.get(f"/v1/images/{ready['imageId']}", headers=bob)) == same(
        await client.get(f"/v1/images/{unknown}", headers=bob)
    )
    assert same(await client.get(f"/v1/images/jobs/{ready['jobId']}", headers=bob)) == same(
        await client.get(f"/v1/images/jobs/{unknown}", headers=bob)
    )
    assert same(await client.get(f"/v1/images/jobs/{ready['jobId']}/events", headers=bob)) == same(
        await client.get(f"/v1/images/jobs/{unknown}/events", headers=bob)
    )
    assert same(await client.delete(f"/v1/images/{ready['imageId']}", headers=bob)) == same(
        await client.delete(f"/v1/images/{unknown}", headers=bob)
    )
    assert (await client.get(f"/v1/images/{ready['imageId']}", headers=alice)).status_code == 200
    admin = bearer(issuer, "ops@example.com", "admin")
    assert (await client.get(f"/v1/images/{ready['imageId']}", headers=admin)).status_code == 200
    assert (await client.get(f"/v1/images/jobs/{ready['jobId']}", headers=admin)).status_code == 200


async def test_delete_removes_the_image_and_its_file(
    client: httpx.AsyncClient, issuer: DevIssuer, images: None, gateway_settings: GatewaySettings
) -> None:
    alice = bearer(issuer, "alice@example.com")
    ready = await generated(client, alice)
    files = stored_files(gateway_settings)
    assert len(files) == 1

    assert (await client.delete(f"/v1/images/{ready['imageId']}", headers=alice)).status_code == 204
    assert_problem(await client.get(f"/v1/images/{ready['imageId']}", headers=alice), 404)
    assert_problem(await client.get(ready["url"]), 404)
    assert stored_files(gateway_settings) == []
    assert (await client.get("/v1/images", headers=alice)).json()["images"] == []
    assert_problem(await client.delete(f"/v1/images/{ready['imageId']}", headers=alice), 404)


async def test_an_idempotency_key_gives_the_same_job_and_one_charge(
    client: httpx.AsyncClient, issuer: DevIssuer, images: None
) -> None:
    alice, bob = bearer(issuer, "alice@example.com"), bearer(issuer, "bob@example.com")
    keyed = alice | {"Idempotency-Key": "retry-me-1"}
    first = await client.post("/v1/images", json=SMALL, headers=keyed)
    await finished(client, first.json()["id"], alice)
    again = await client.post("/v1/images", json=SMALL, headers=keyed)

    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert await credits(client, alice) == {"available": 15, "reserved": 0, "spent": 5, "granted": 20}
    assert len((await client.get("/v1/images", headers=alice)).json()["images"]) == 1
    other = await client.post("/v1/images", json=SMALL, headers=bob | {"Idempotency-Key": "retry-me-1"})
    assert other.json()["id"] != first.json()["id"]  # keys are per user
    changed = await client.post("/v1/images", json=SMALL | {"prompt": "something else"}, headers=keyed)
    assert_problem(changed, 409)


async def test_without_enough_credits_it_is_402_at_once_and_no_job_is_left(
    client: httpx.AsyncClient, issuer: DevIssuer, images: None
) -> None:
    alice = bearer(issuer, "alice@example.com")
    for _ in range(4):
        await generated(client, alice)
    problem = assert_problem(await client.post("/v1/images", json=SMALL, headers=alice), 402)

    assert (problem["balance"], problem["price"]) == (0, 5)
    assert await credits(client, alice) == {"available": 0, "reserved": 0, "spent": 20, "granted": 20}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": ""}, "body.prompt"),
        ({"prompt": "x", "size": "300x300"}, "body.size"),
        ({"prompt": "x", "model": "bad model!"}, "body.model"),
        ({"prompt": "x", "steps": 50}, "body.steps"),
    ],
)
async def test_bad_input_is_422_naming_the_field_and_holds_nothing(
    client: httpx.AsyncClient, issuer: DevIssuer, images: None, body: dict[str, Any], field: str
) -> None:
    alice = bearer(issuer, "alice@example.com")
    problem = assert_problem(await client.post("/v1/images", json=body, headers=alice), 422)

    assert field in [e["field"] for e in problem["errors"]]
    assert await credits(client, alice) == {"available": 20, "reserved": 0, "spent": 0, "granted": 20}


async def test_a_model_not_offered_is_404_naming_the_field_and_holds_nothing(
    client: httpx.AsyncClient, issuer: DevIssuer, images: None
) -> None:
    alice = bearer(issuer, "alice@example.com")
    body = {"prompt": "x", "model": "someone/expensive-model"}
    problem = assert_problem(await client.post("/v1/images", json=body, headers=alice), 404)
    assert [e["field"] for e in problem["errors"]] == ["body.model"]
    assert await credits(client, alice) == {"available": 20, "reserved": 0, "spent": 0, "granted": 20}


async def test_job_timeout_header_out_of_range_is_422(
    client: httpx.AsyncClient, issuer: DevIssuer, images: None
) -> None:
    alice = bearer(issuer, "alice@example.com")
    for value in ("soon", "0", "31"):
        response = await client.post("/v1/images", json=SMALL, headers=alice | {"X-Request-Timeout": value})
        assert "header.x-request-timeout" in [e["field"] for e in assert_problem(response, 422)["errors"]]


async def test_a_job_past_its_deadline_fails_and_charges_nothing(
    client: httpx.AsyncClient, issuer: DevIssuer, credits_service: None, gateway_settings: GatewaySettings
) -> None:
    alice = bearer(issuer, "alice@example.com")
    async with in_process("imagegen", imagegen_settings(gateway_settings, local_image_latency_s=30)):
        response = await client.post("/v1/images", json=SMALL, headers=alice | {"X-Request-Timeout": "1"})
        done = await finished(client, response.json()["id"], alice)

    assert (done["status"], done["charged"], done["error"]["code"]) == ("failed", 0, "deadline_exceeded")
    assert await credits(client, alice) == {"available": 20, "reserved": 0, "spent": 0, "granted": 20}


async def test_openai_compatible_generation_answers_with_the_finished_image(
    client: httpx.AsyncClient, issuer: DevIssuer, images: None
) -> None:
    alice = bearer(issuer, "alice@example.com")
    by_url = await client.post("/v1/images/generations", json={"prompt": "a boat", "size": "256x256"}, headers=alice)
    as_data = await client.post(
        "/v1/images/generations",
        json={"prompt": "a boat", "size": "256x256", "response_format": "b64_json", "n": 1},
        headers=alice,
    )

    assert by_url.status_code == 200, by_url.text
    [item] = by_url.json()["data"]
    assert isinstance(by_url.json()["created"], int)
    served = (await client.get(item["url"])).content
    assert as_data.status_code == 200, as_data.text
    decoded = base64.b64decode(as_data.json()["data"][0]["b64_json"])
    assert Image.open(io.BytesIO(decoded)).size == Image.open(io.BytesIO(served)).size == (256, 256)
    too_many = await client.post("/v1/images/generations", json={"prompt": "x", "n": 2}, headers=alice)
    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "n"
    assert await credits(client, alice) == {"available": 10, "reserved": 0, "spent": 10, "granted": 20}


async def test_concurrent_jobs_of_one_user_each_get_their_image(
    client: httpx.AsyncClient, issuer: DevIssuer, images: None
) -> None:
    alice = bearer(issuer, "alice@example.com")
    ready = await asyncio.gather(*(generated(client, alice, name=f"n{i}") for i in range(4)))

    assert len({r["imageId"] for r in ready}) == 4
    assert await credits(client, alice) == {"available": 0, "reserved": 0, "spent": 20, "granted": 20}


def stored_files(settings: GatewaySettings) -> list[Path]:
    return list(Path(settings.image_data_dir).rglob("*.png"))


def parse_sse(raw: bytes) -> list[dict[str, str]]:
    events = []
    for block in raw.decode().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        if "data" in fields:
            events.append(fields)
    return events


async def test_one_user_cannot_hold_more_event_streams_open_than_the_bound(
    issuer: DevIssuer, credits_service: None, gateway_settings: GatewaySettings
) -> None:
    """The attacker opens progress streams on a long job until the gateway runs out of
    subscriptions: past MAX_STREAMS_PER_USER they are refused (429), and a closed one frees its place."""
    alice, bob = bearer(issuer, "alice@example.com"), bearer(issuer, "bob@example.com")
    app = create_app(gateway_settings.model_copy(update={"max_streams_per_user": 2}))
    async with (
        in_process("imagegen", imagegen_settings(gateway_settings, local_image_latency_s=30)),
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client,
    ):
        job = (await client.post("/v1/images", json=SMALL, headers=alice)).json()
        url = f"/v1/images/jobs/{job['id']}/events"
        holding = [asyncio.create_task(client.get(url, headers=alice)) for _ in range(2)]
        await poll(lambda: app.state.streams.held(alice_id(issuer)), lambda n: n == 2, within=10, interval=0.02)
        refused = await client.get(url, headers=alice)
        assert refused.status_code == 429 and refused.json()["limit"] == "streams"
        assert refused.headers["retry-after"]
        bobs_job = (await client.post("/v1/images", json=SMALL, headers=bob)).json()
        bobs = asyncio.create_task(client.get(f"/v1/images/jobs/{bobs_job['id']}/events", headers=bob))
        await poll(lambda: app.state.streams.held(alice_id(issuer, "bob@example.com")), lambda n: n == 1, within=10)
        holding[0].cancel()  # alice closes one stream
        await poll(lambda: app.state.streams.held(alice_id(issuer)), lambda n: n == 1, within=10, interval=0.02)
        for task in [*holding[1:], bobs]:
            task.cancel()
        await asyncio.gather(*holding, bobs, return_exceptions=True)
        assert app.state.streams.held(alice_id(issuer)) == 0


def alice_id(issuer: DevIssuer, email: str = "alice@example.com") -> str:
    """The user id the development issuer gives an address (its token's `sub`)."""
    token = issuer.token(email=email, role="user")
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    return str(payload["sub"])
