"""CPU use of the processes in a benchmark round, from /proc (Linux): it says which process a
round was bound by. A process at ~100% of one core is the bottleneck; the machine has
`os.cpu_count()` cores for all of them together."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Mapping
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def find_pid(needle: str) -> int | None:
    """The first process whose command line contains `needle` (e.g. RabbitMQ's beam.smp)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    return int(entry.name)
            except OSError:
                continue
    return None


async def with_cpu[T](work: Awaitable[T], pids: Mapping[str, int]) -> tuple[T, dict[str, float]]:
    """Run `work` and return its result with each process's CPU use over it, in % of one core."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.monotonic()
    result = await work
    wall = time.monotonic() - started
    return result, {name: round(100 * (cpu_seconds(pid) - before[name]) / wall, 1) for name, pid in pids.items()}
