"""Chat service entry point: build settings, wire adapters, consume until stopped."""

from __future__ import annotations

import asyncio

from chat.handlers import ChatHandlers
from chat.providers import LocalProvider
from chat.settings import ChatSettings
from common.runtime import run_service


def main() -> None:
    settings = ChatSettings()
    handlers = ChatHandlers(provider=LocalProvider(), default_model=settings.default_model)
    asyncio.run(run_service(settings, handlers={"CompleteChat": handlers.complete_chat}))


if __name__ == "__main__":
    main()
