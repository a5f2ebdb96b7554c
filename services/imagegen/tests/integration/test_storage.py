"""Both image stores: Cloudinary through the official SDK against the simulator, and local files."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from common.errors import UpstreamFailed
from imagegen.providers import inspect_image
from imagegen.providers.local_generator import render
from imagegen.storage import CloudinaryStorage, LocalStorage
from tests.simulator.server import RunningSimulator

pytestmark = pytest.mark.integration

IMAGE = inspect_image(render("stored", (64, 48)))


def cloudinary(simulator: RunningSimulator, *, secret: str | None = None) -> CloudinaryStorage:
    url = simulator.base_urls.cloudinary
    if secret is not None:
        url = url.replace(f":{simulator.sim.cloudinary_secret}@", f":{secret}@")
    return CloudinaryStorage(url=url, root_folder="aisaas", timeout_s=5)


async def test_cloudinary_keeps_the_upload_in_the_users_folder_and_deletes_it(simulator: RunningSimulator) -> None:
    storage = cloudinary(simulator)
    key = storage.key_for(user_id="user_1", image_id=uuid.uuid4())
    stored = await storage.put(key=key, image=IMAGE, tags=["aisaas"])

    assert simulator.sim.cloudinary_public_ids() == [key] and key.startswith("aisaas/user_1/")
    async with httpx.AsyncClient() as http:
        assert (await http.get(stored.url)).content == IMAGE.data
    await storage.put(key=key, image=IMAGE, tags=["aisaas"])  # a repeated upload overwrites
    assert simulator.sim.cloudinary_public_ids() == [key]
    await storage.delete(key)
    await storage.delete(key)  # already gone: fine
    assert simulator.sim.cloudinary_public_ids() == []


async def test_a_refused_upload_or_delete_is_an_upstream_failure(simulator: RunningSimulator) -> None:
    storage = cloudinary(simulator)
    key = storage.key_for(user_id="user_1", image_id=uuid.uuid4())
    simulator.sim.add_fault("cloudinary", status=500, endpoint="upload")
    with pytest.raises(UpstreamFailed, match="refused the upload"):
        await storage.put(key=key, image=IMAGE, tags=[])
    await storage.put(key=key, image=IMAGE, tags=[])
    simulator.sim.add_fault("cloudinary", status=503, endpoint="destroy")
    with pytest.raises(UpstreamFailed, match="refused the deletion"):
        await storage.delete(key)
    assert simulator.sim.cloudinary_public_ids() == [key]


async def test_uploads_are_signed_with_the_secret(simulator: RunningSimulator) -> None:
    storage = cloudinary(simulator, secret="not-the-secret")
    with pytest.raises(UpstreamFailed, match="refused the upload"):
        await storage.put(key=storage.key_for(user_id="u", image_id=uuid.uuid4()), image=IMAGE, tags=[])
    assert simulator.sim.cloudinary_public_ids() == []


async def test_local_storage_writes_whole_files_and_deletes_them(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    image_id = uuid.uuid4()
    key = storage.key_for(user_id="user_1", image_id=image_id)
    stored = await storage.put(key=key, image=IMAGE, tags=[])

    assert stored.url == f"/files/images/user_1/{image_id}.png"
    assert (tmp_path / "user_1" / f"{image_id}.png").read_bytes() == IMAGE.data
    assert [p.name for p in (tmp_path / "user_1").iterdir()] == [f"{image_id}.png"]  # no partial files left
    await storage.delete(key)
    await storage.delete(key)
    await storage.delete(storage.key_for(user_id="nobody", image_id=image_id))
    assert list((tmp_path / "user_1").iterdir()) == []
