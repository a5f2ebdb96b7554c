"""Images in Cloudinary through its official SDK: signed uploads into a folder per user, and
destroy.

Configured by `CLOUDINARY_URL` (`cloudinary://KEY:SECRET@CLOUD?upload_prefix=URL`, the SDK's
own variable; `upload_prefix` points it at another host, such as the test simulator). The
options go with every call instead of into the SDK's process-wide config. The SDK is
synchronous (urllib3), so each call runs in a thread, bounded by the SDK's own timeout so
that a call we stop waiting for also stops.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import cloudinary.exceptions
import cloudinary.uploader

from common.errors import UpstreamFailed
from imagegen.providers.base import GeneratedImage
from imagegen.storage.base import StoredAsset, user_folder

log = logging.getLogger(__name__)


def options_from_url(url: str) -> dict[str, Any]:
    """The SDK options a CLOUDINARY_URL stands for, read the way the SDK reads it."""
    parts = urlsplit(url)
    if parts.scheme != "cloudinary" or not parts.hostname or not parts.username or not parts.password:
        raise ValueError("CLOUDINARY_URL must look like cloudinary://KEY:SECRET@CLOUD")
    options: dict[str, Any] = {"cloud_name": parts.hostname, "api_key": parts.username, "api_secret": parts.password}
    options.update({key: values[0] for key, values in parse_qs(parts.query).items()})
    return options


class CloudinaryStorage:
    name = "cloudinary"

    def __init__(self, *, url: str, root_folder: str, timeout_s: float) -> None:
        self._options = options_from_url(url)
        self._root = root_folder
        self._timeout_s = timeout_s

    def key_for(self, *, user_id: str, image_id: uuid.UUID) -> str:
        return f"{self._root}/{user_folder(user_id)}/{image_id}"

    async def put(self, *, key: str, image: GeneratedImage, tags: list[str]) -> StoredAsset:
        folder, _, public_id = key.rpartition("/")
        try:
            result = await asyncio.to_thread(
                cloudinary.uploader.upload,
                image.data,
                folder=folder,
                public_id=public_id,
                overwrite=True,
                resource_type="image",
                tags=tags,
                timeout=self._timeout_s,
                **self._options,
            )
        except cloudinary.exceptions.Error as exc:
            raise UpstreamFailed(f"image storage refused the upload: {str(exc)[:300]}") from exc
        if result.get("public_id") != key:
            # Stored under another name: remove it rather than leave a file nothing points to.
            await self._destroy(str(result.get("public_id", key)))
            raise UpstreamFailed("image storage kept the upload under an unexpected name")
        return StoredAsset(backend=self.name, key=key, url=str(result.get("secure_url") or result["url"]))

    async def delete(self, key: str) -> None:
        result = await self._destroy(key)
        if result not in ("ok", "not found"):
            raise UpstreamFailed(f"image storage did not delete the file: {result}")

    async def _destroy(self, key: str) -> str:
        try:
            reply = await asyncio.to_thread(
                cloudinary.uploader.destroy,
                key,
                resource_type="image",
                invalidate=True,
                timeout=self._timeout_s,
                **self._options,
            )
        except cloudinary.exceptions.Error as exc:
            raise UpstreamFailed(f"image storage refused the deletion: {str(exc)[:300]}") from exc
        return str(reply.get("result"))
