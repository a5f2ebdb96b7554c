"""Chat service entry point: build settings, wire adapters, consume until stopped."""

from __future__ import annotations

import asyncio
from functools import partial

from chat.handlers import ChatHandlers
from chat.providers import LocalProvider
from chat.settings import ChatSettings
from common.bus import Handler
from common.runtime import Runtime, run_service


async def setup(runtime: Runtime, settings: ChatSettings) -> dict[str, Handler]:
    handlers = ChatHandlers(provider=LocalProvider(), default_model=settings.default_model)
    return {"CompleteChat": handlers.complete_chat}


def main() -> None:
    settings = ChatSettings()
    asyncio.run(run_service(settings, partial(setup, settings=settings)))


if __name__ == "__main__":
    main()
