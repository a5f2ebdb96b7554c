"""An offline image generator: a picture drawn with Pillow from the prompt alone, so the
whole system works with no provider configured.

The picture is a deterministic function of the prompt and size (same prompt, same bytes): a
two-colour gradient, a few translucent shapes placed by the prompt's hash, and the prompt
written across the bottom. `latency_s` gives it the slowness of a real model for demos and
tests of progress and deadlines.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import textwrap
import uuid

from PIL import Image, ImageDraw, ImageFont, ImageOps

from imagegen.providers.base import GeneratedImage, GenerationRequest, OnStarted, OnStatus, dimensions

STEPS = 4


def render(prompt: str, size: tuple[int, int]) -> bytes:
    width, height = size
    digest = hashlib.sha256(prompt.encode()).digest()
    top, bottom = tuple(digest[0:3]), tuple(digest[3:6])
    gradient = Image.linear_gradient("L").resize((width, height))
    image = ImageOps.colorize(gradient, black=top, white=bottom).convert("RGBA")
    overlay = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for i in range(6):
        b = digest[6 + i * 4 : 10 + i * 4]
        cx, cy = b[0] * width // 255, b[1] * height // 255
        radius = max(8, b[2] * min(width, height) // 510)
        colour = (*digest[(i * 3) % 29 : (i * 3) % 29 + 3], 110)
        box = (cx - radius, cy - radius, cx + radius, cy + radius)
        if b[3] % 2:
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, fill=colour)
    image = Image.alpha_composite(image, overlay).convert("RGB")
    font_size = max(10, height // 32)
    font = ImageFont.load_default(size=font_size)
    lines = textwrap.wrap(" ".join(prompt.split()), width=max(12, int(width / (font_size * 0.6))))[:3]
    text = ImageDraw.Draw(image)
    band = (len(lines) + 1) * font_size * 1.2
    text.rectangle((0, height - band, width, height), fill=(0, 0, 0))
    for row, line in enumerate(lines):
        text.text(
            (font_size // 2, height - band + font_size * 0.6 + row * font_size * 1.2), line, fill="white", font=font
        )
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


class LocalGenerator:
    name = "local"
    default_model = "local-pillow-1"

    def __init__(self, *, latency_s: float = 0.0) -> None:
        self._latency_s = latency_s

    async def generate(
        self, request: GenerationRequest, *, resume: str | None, on_started: OnStarted, on_status: OnStatus
    ) -> GeneratedImage:
        await on_started(resume or f"local-{uuid.uuid4().hex}")
        await on_status("processing")
        for _ in range(STEPS if self._latency_s else 0):
            await asyncio.sleep(self._latency_s / STEPS)
        width, height = dimensions(request.size)
        data = await asyncio.to_thread(render, request.prompt, (width, height))
        await on_status("succeeded")
        return GeneratedImage(data=data, format="png", width=width, height=height)

    async def cancel(self, ref: str) -> None:
        """Nothing runs anywhere else: abandoning the drawing is enough."""

    async def aclose(self) -> None:
        pass
