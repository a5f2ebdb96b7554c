import io

import pytest
from PIL import Image

from imagegen.providers import GenerationRequest, LocalGenerator, inspect_image
from imagegen.providers.local_generator import render

pytestmark = pytest.mark.unit


def test_the_picture_is_a_function_of_prompt_and_size() -> None:
    first, again = render("a red lighthouse", (256, 256)), render("a red lighthouse", (256, 256))
    other = render("a blue lighthouse", (256, 256))

    assert first == again and first != other
    with Image.open(io.BytesIO(render("wide", (1792, 1024)))) as image:
        assert (image.format, image.size) == ("PNG", (1792, 1024))


async def test_the_generator_reports_its_work_and_hands_back_a_checked_png() -> None:
    started: list[str] = []
    statuses: list[str] = []

    async def on_started(ref: str) -> None:
        started.append(ref)

    async def on_status(status: str) -> None:
        statuses.append(status)

    image = await LocalGenerator().generate(
        GenerationRequest(prompt="x", model="local-pillow-1", size="512x512"),
        resume=None,
        on_started=on_started,
        on_status=on_status,
    )

    assert (image.format, image.width, image.height) == ("png", 512, 512)
    assert inspect_image(image.data) == image
    assert len(started) == 1 and statuses == ["processing", "succeeded"]
