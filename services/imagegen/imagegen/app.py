"""Image generation service entry point. An idle skeleton until its issue lands: it joins the
bus and checks that MongoDB answers, so `make run` shows the whole topology alive."""

from __future__ import annotations

import asyncio
from functools import partial

from common.bus import Handler
from common.mongo import mongo_client
from common.runtime import Runtime, run_service
from imagegen.settings import ImagegenSettings


async def setup(runtime: Runtime, settings: ImagegenSettings) -> dict[str, Handler]:
    client = mongo_client(settings)
    runtime.on_close(client.close)
    await client.admin.command("ping")
    return {}


def main() -> None:
    settings = ImagegenSettings()
    asyncio.run(run_service(settings, partial(setup, settings=settings)))


if __name__ == "__main__":
    main()
