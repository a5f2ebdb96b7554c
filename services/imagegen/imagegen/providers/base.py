"""What every image provider offers the job runner, and the picture it hands back."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from PIL import Image, UnidentifiedImageError

from common.contracts import ImageSize
from common.errors import UpstreamFailed

OnStarted = Callable[[str], Awaitable[None]]
OnStatus = Callable[[str], Awaitable[None]]

# The aspect ratio providers such as the FLUX models take instead of pixel sizes.
ASPECT_RATIOS: dict[str, str] = {
    "256x256": "1:1",
    "512x512": "1:1",
    "1024x1024": "1:1",
    "1536x1024": "3:2",
    "1024x1536": "2:3",
    "1792x1024": "16:9",
    "1024x1792": "9:16",
}
FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}


def dimensions(size: ImageSize) -> tuple[int, int]:
    width, _, height = size.partition("x")
    return int(width), int(height)


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    prompt: str
    model: str
    size: ImageSize


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    data: bytes
    format: str  # png, jpeg, webp or gif
    width: int
    height: int

    @property
    def content_type(self) -> str:
        return FORMATS[self.format]

    @property
    def extension(self) -> str:
        return "jpg" if self.format == "jpeg" else self.format


def inspect_image(data: bytes) -> GeneratedImage:
    """Check that `data` is a whole picture in a format we serve; UpstreamFailed when it is not."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            kind, width, height = (image.format or "").lower(), image.width, image.height
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UpstreamFailed("the provider's output is not a readable image") from exc
    if kind not in FORMATS:
        raise UpstreamFailed(f"the provider's output is a {kind or 'unknown'} file, not png, jpeg, webp or gif")
    return GeneratedImage(data=data, format=kind, width=width, height=height)


class ImageProvider(Protocol):
    """Draws one image. `on_started` gets the provider's id for the work as soon as it exists
    (so a deadline or a crash can cancel it); `resume` continues work started before."""

    name: str
    default_model: str

    async def generate(
        self, request: GenerationRequest, *, resume: str | None, on_started: OnStarted, on_status: OnStatus
    ) -> GeneratedImage: ...

    async def cancel(self, ref: str) -> None: ...

    async def aclose(self) -> None: ...
