"""Images as files under a data directory, which the gateway serves at LOCAL_FILES_PATH.

The URL kept is a path (`/files/images/<user folder>/<image id>.png`): the gateway answers it
on whatever address clients reach it by. Image ids are random, so the path is not guessable.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

from common.contracts.images import LOCAL_FILES_PATH
from imagegen.providers.base import GeneratedImage
from imagegen.storage.base import StoredAsset, user_folder


class LocalStorage:
    name = "local"

    def __init__(self, root: Path) -> None:
        self._root = root

    def key_for(self, *, user_id: str, image_id: uuid.UUID) -> str:
        return f"{user_folder(user_id)}/{image_id}"

    async def put(self, *, key: str, image: GeneratedImage, tags: list[str]) -> StoredAsset:
        name = f"{key}.{image.extension}"
        await asyncio.to_thread(self._write, self._root / name, image.data)
        return StoredAsset(backend=self.name, key=key, url=f"{LOCAL_FILES_PATH}/{name}")

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._remove, key)

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        partial.write_bytes(data)
        os.replace(partial, path)  # readers see the whole file or none

    def _remove(self, key: str) -> None:
        folder, _, stem = key.rpartition("/")
        directory = self._root / folder
        for path in directory.glob(f"{stem}.*") if directory.is_dir() else ():
            path.unlink(missing_ok=True)
