"""Chat service entry point: build settings, wire adapters, consume until stopped."""

from __future__ import annotations

import asyncio
from functools import partial

from chat.handlers import ChatHandlers
from chat.pricing import ChatPricing
from chat.providers import LocalProvider
from chat.settings import ChatSettings
from common.bus import Handler, RpcClient
from common.credits import CreditsClient
from common.runtime import Runtime, run_service


async def setup(runtime: Runtime, settings: ChatSettings) -> dict[str, Handler]:
    rpc = RpcClient(runtime.bus, process=settings.service_name)
    await rpc.start()
    handlers = ChatHandlers(
        provider=LocalProvider(latency_s=settings.local_latency_s),
        default_model=settings.default_model,
        pricing=ChatPricing(default=settings.chat_price, by_model=settings.chat_model_prices),
        credits=CreditsClient(rpc),
    )
    return {"CompleteChat": handlers.complete_chat}


def main() -> None:
    settings = ChatSettings()
    asyncio.run(run_service(settings, partial(setup, settings=settings)))


if __name__ == "__main__":
    main()
