"""The load loop every benchmark shares: CONCURRENCY workers for a fixed time, then calls per
second and latency percentiles. A worker returning False counts as a failure, not a call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def run_for(
    seconds: float, worker: Callable[[int, int], Awaitable[object]], *, concurrency: int
) -> dict[str, float]:
    latencies: list[float] = []
    failures = 0
    stop_at = time.perf_counter() + seconds

    async def loop(i: int) -> None:
        nonlocal failures
        n = 0
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            if await worker(i, n) is False:
                failures += 1
            else:
                latencies.append(time.perf_counter() - started)
            n += 1

    await asyncio.gather(*(loop(i) for i in range(concurrency)))
    return {
        "per_s": round(len(latencies) / seconds, 2),
        "p50_ms": round(percentile(latencies, 0.5) * 1e3, 3),
        "p99_ms": round(percentile(latencies, 0.99) * 1e3, 3),
        "failures": failures,
    }
