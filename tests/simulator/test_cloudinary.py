"""The official `cloudinary` SDK against the simulator: signed upload (file, data URI, local URL) and destroy."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import cloudinary
import cloudinary.exceptions
import cloudinary.uploader
import httpx
import pytest
import replicate

from tests.simulator.images import render_png
from tests.simulator.server import RunningSimulator

pytestmark = pytest.mark.integration


def account(simulator: RunningSimulator, **overrides: str) -> dict[str, str]:
    """Per-call options, so the SDK's process-wide `cloudinary.config()` is left alone."""
    sim = simulator.sim
    options = {
        "cloud_name": sim.cloudinary_cloud,
        "api_key": sim.cloudinary_key,
        "api_secret": sim.cloudinary_secret,
        "upload_prefix": simulator.base_urls.cloudinary_upload_prefix,
    }
    return {**options, **overrides}


async def upload(file: Any, **options: Any) -> dict[str, Any]:
    return await asyncio.to_thread(cloudinary.uploader.upload, file, **options)


async def stored(simulator: RunningSimulator) -> list[str]:
    async with httpx.AsyncClient() as http:
        listing = await http.get(f"{simulator.url}/_sim/cloudinary/assets")
    return listing.json()["public_ids"]


def test_cloudinary_url_points_the_sdk_at_the_simulator(
    simulator: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLOUDINARY_CLOUD_NAME", raising=False)
    monkeypatch.setenv("CLOUDINARY_URL", simulator.base_urls.cloudinary)
    config = cloudinary.Config()  # reads CLOUDINARY_URL like the global config does
    options = {k: getattr(config, k) for k in ("cloud_name", "api_key", "api_secret", "upload_prefix")}

    assert options == account(simulator)
    assert cloudinary.utils.cloudinary_api_url("upload", **options) == (
        f"{simulator.url}/cloudinary/v1_1/sim-cloud/image/upload"
    )
    result = cloudinary.uploader.upload(render_png("via url config"), public_id="from-env", **options)
    assert result["public_id"] == "from-env"


async def test_signed_upload_is_stored_served_and_destroyed(simulator: RunningSimulator) -> None:
    png = render_png("a lighthouse", (64, 48))
    result = await upload(png, folder="generated/user-1", public_id="img-1", tags=["a", "b"], **account(simulator))

    assert result["public_id"] == "generated/user-1/img-1"
    assert (result["width"], result["height"], result["format"], result["bytes"]) == (64, 48, "png", len(png))
    assert result["resource_type"] == "image"
    assert result["tags"] == ["a", "b"]
    assert isinstance(result["version"], int)
    assert result["secure_url"] == f"{simulator.url}/cloudinary/assets/generated/user-1/img-1.png"
    async with httpx.AsyncClient() as http:
        served = await http.get(result["secure_url"])
    assert served.content == png
    assert await stored(simulator) == ["generated/user-1/img-1"]

    destroyed = await asyncio.to_thread(cloudinary.uploader.destroy, result["public_id"], **account(simulator))
    again = await asyncio.to_thread(cloudinary.uploader.destroy, result["public_id"], **account(simulator))

    assert destroyed == {"result": "ok"}
    assert again == {"result": "not found"}
    assert await stored(simulator) == []
    assert simulator.sim.count("cloudinary", "upload") == 1
    assert simulator.sim.count("cloudinary", "destroy") == 2


async def test_wrong_secret_is_rejected_and_nothing_is_stored(simulator: RunningSimulator) -> None:
    with pytest.raises(cloudinary.exceptions.AuthorizationRequired, match="Invalid Signature"):
        await upload(render_png("x"), public_id="nope", **account(simulator, api_secret="wrong-secret"))
    with pytest.raises(cloudinary.exceptions.AuthorizationRequired, match="Invalid api_key"):
        await upload(render_png("x"), public_id="nope", **account(simulator, api_key="other-key"))
    with pytest.raises(cloudinary.exceptions.AuthorizationRequired):
        await asyncio.to_thread(cloudinary.uploader.destroy, "nope", **account(simulator, api_secret="wrong"))

    assert await stored(simulator) == []


async def test_sha256_signatures_are_accepted(simulator: RunningSimulator) -> None:
    result = await upload(render_png("x"), public_id="sha", signature_algorithm="sha256", **account(simulator))

    assert result["public_id"] == "sha"


async def test_data_uri_and_local_url_sources(simulator: RunningSimulator) -> None:
    png = render_png("inline")
    inline = await upload("data:image/png;base64," + base64.b64encode(png).decode(), **account(simulator))
    assert inline["bytes"] == len(png)
    assert len(inline["public_id"]) == 20  # a random id when none is given

    async with httpx.AsyncHTTPTransport() as transport:
        api = replicate.Client(api_token="t", base_url=simulator.base_urls.replicate, transport=transport)
        [url] = await api.async_run("owner/model", input={"prompt": "from replicate"})
    fetched = await upload(url, folder="copies", public_id="p", **account(simulator))
    assert fetched["public_id"] == "copies/p"
    assert fetched["bytes"] == len(render_png("from replicate"))


async def test_remote_urls_and_non_images_are_refused(simulator: RunningSimulator) -> None:
    with pytest.raises(cloudinary.exceptions.BadRequest, match=r"127\.0\.0\.1"):
        await upload("https://example.com/cat.png", **account(simulator))
    with pytest.raises(cloudinary.exceptions.BadRequest, match="Invalid image file"):
        await upload(b"not an image", **account(simulator))

    assert await stored(simulator) == []


async def test_faults_use_cloudinary_error_format(simulator: RunningSimulator) -> None:
    simulator.sim.add_fault("cloudinary", status=500, times=1)
    with pytest.raises(cloudinary.exceptions.GeneralError, match="Simulated cloudinary fault"):
        await upload(render_png("x"), **account(simulator))
    simulator.sim.add_fault("cloudinary", malformed=True, times=1)
    with pytest.raises(cloudinary.exceptions.Error, match="Error parsing server response"):
        await upload(render_png("x"), **account(simulator))

    assert await stored(simulator) == []
