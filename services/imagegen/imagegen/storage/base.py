"""Where generated images are kept: the interface both stores offer the job runner."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from typing import Protocol

from imagegen.providers.base import GeneratedImage

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def user_folder(user_id: str) -> str:
    """A folder name per user: the id where it is safe as a path segment, else a digest of it."""
    if not _UNSAFE.search(user_id) and 0 < len(user_id) <= 64:
        return user_id
    return "u_" + hashlib.sha256(user_id.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class StoredAsset:
    backend: str
    key: str
    url: str


class ImageStorage(Protocol):
    """`key_for` is deterministic, so an upload that may or may not have happened (a crash, a
    timeout) can still be deleted by key; `put` overwrites, `delete` of a missing key is fine."""

    name: str

    def key_for(self, *, user_id: str, image_id: uuid.UUID) -> str: ...

    async def put(self, *, key: str, image: GeneratedImage, tags: list[str]) -> StoredAsset: ...

    async def delete(self, key: str) -> None: ...
