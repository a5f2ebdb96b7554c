"""Waiting on a condition with a bound, never on the clock alone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def wait_until[T](
    probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], *, within: float, interval: float = 0.05
) -> T:
    """Poll `probe` until `accept` holds for its value; fail with the last value after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s; last value: {value!r}")
        await asyncio.sleep(interval)
