"""The chat path in one test process, on the real broker, Redis and MongoDB-protocol server,
with the providers replaced only by the simulator at their HTTP boundary:
credits and chat services through their real wiring (`in_process`), and the gateway served by
uvicorn on a local port, so SSE arrives as it is written and the `openai` SDK can connect."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from chat.settings import ChatSettings
from common.settings import CommonSettings
from credits.settings import CreditsSettings
from tests.simulator.server import RunningSimulator
from tests.support.services import in_process
from tests.support.waiting import wait_until


def chat_settings(base: CommonSettings, simulator: RunningSimulator | None, **overrides: Any) -> ChatSettings:
    """Chat settings on `base`'s broker, Redis, MongoDB and namespace, pointed at the simulator's Gemini and OpenAI."""
    providers: dict[str, Any] = {}
    if simulator is not None:
        providers = {
            "gemini_api_key": "sim-gemini-key",
            "google_gemini_base_url": simulator.base_urls.gemini,
            "openai_api_key": "sim-openai-key",
            "openai_base_url": simulator.base_urls.openai,
        }
    common = base.model_dump(
        include={"amqp_url", "redis_url", "redis_cluster", "bus_namespace", "mongodb_url", "mongodb_database"}
    )
    return ChatSettings(
        **common, **{"chat_attempt_timeout_s": 2.0, "chat_retry_backoff_s": 0.05, **providers, **overrides}
    )


def credits_settings(base: CommonSettings, **overrides: Any) -> CreditsSettings:
    common = base.model_dump(
        include={"amqp_url", "redis_url", "redis_cluster", "bus_namespace", "mongodb_url", "mongodb_database"}
    )
    return CreditsSettings(**common, **{"signup_credits": 100, **overrides})


@asynccontextmanager
async def chat_services(
    base: CommonSettings, *chats: ChatSettings, credits: CreditsSettings | None = None
) -> AsyncIterator[None]:
    """Credits plus one chat replica per settings object, all consuming in this process."""
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(in_process("credits", credits or credits_settings(base)))
        for settings in chats:
            await stack.enter_async_context(in_process("chat", settings))
        yield


@asynccontextmanager
async def served(app: FastAPI, *, send_buffer: int | None = None) -> AsyncIterator[str]:
    """Serve an app (lifespan already entered) on a free local port in this event loop; yields its URL.
    `send_buffer` fixes the kernel's send buffer of its connections (loopback grows it to megabytes)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if send_buffer is not None:  # accepted connections inherit it
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False, timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        await wait_until(lambda: _started(server, task), bool, within=10, interval=0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        listener.close()


async def _started(server: uvicorn.Server, task: asyncio.Task[None]) -> bool:
    if task.done():
        task.result()
        raise RuntimeError("the gateway server stopped during start-up")
    return bool(server.started)
