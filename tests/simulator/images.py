"""PNG pictures drawn from a prompt with Pillow: same prompt, same bytes."""

from __future__ import annotations

import hashlib
import io
import textwrap

from PIL import Image, ImageDraw

SIZE = (256, 256)


def render_png(prompt: str, size: tuple[int, int] = SIZE) -> bytes:
    """A plain picture whose colour is a hash of the prompt, with the prompt written on it."""
    digest = hashlib.sha256(prompt.encode()).digest()
    background = (digest[0], digest[1], digest[2])
    ink = tuple(255 - c for c in background)
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    lines = textwrap.wrap(prompt or "(no prompt)", width=max(8, size[0] // 8))[: max(1, size[1] // 14)]
    for row, line in enumerate(lines):
        draw.text((6, 6 + row * 14), line, fill=ink)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def parse_size(value: object, default: tuple[int, int] = SIZE) -> tuple[int, int]:
    """'1024x1024' -> (1024, 1024); anything else gives `default`."""
    if isinstance(value, str) and "x" in value:
        width, _, height = value.partition("x")
        if width.isdigit() and height.isdigit() and 0 < int(width) <= 4096 and 0 < int(height) <= 4096:
            return int(width), int(height)
    return default
