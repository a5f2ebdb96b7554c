"""The load loop every benchmark shares: CONCURRENCY workers for a fixed time, then calls per
second and latency percentiles. A worker returning False counts as a failure, not a call.
Also the summary every benchmark writes: medians over rounds, median ratios, the results file."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

FIGURES = ("per_s", "p50_ms", "p99_ms")


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


def medians(rows: Sequence[Mapping[str, Any]], keys: Iterable[str] = FIGURES) -> dict[str, float]:
    """Each figure's median over the rounds."""
    return {k: round(statistics.median(r[k] for r in rows), 2) for k in keys}


def median_ratio(over: Sequence[Mapping[str, Any]], under: Sequence[Mapping[str, Any]]) -> float:
    """The median of the per-round ratios of calls per second (rounds measured side by side)."""
    return round(statistics.median(a["per_s"] / b["per_s"] for a, b in zip(over, under, strict=True)), 3)


def write_results(path: Path, result: Mapping[str, Any]) -> None:
    """Write the results file and print it, without the per-round detail."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rounds_detail"}, indent=2))
