"""CPU use of the processes in a benchmark round, from /proc (Linux): it says which process a
round was bound by, and what a request costs. A process at ~100% of one core is the
bottleneck; the machine has `os.cpu_count()` cores for all of them together.

CPU seconds are user + system time of every thread of a process while it lives; children
that exit during a round take theirs with them, so a group is read before and after a round
over the same list of ids (`tree` of each side's parent processes, taken once per round)."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Iterable, Mapping
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (so field 3, the state, is [0])."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS


def total_cpu_seconds(pids: Iterable[int]) -> float:
    """CPU seconds of a group of processes; one that has gone counts for nothing."""
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except (OSError, IndexError, ValueError):
            continue
    return total


def _parents() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                kids.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return kids


def tree(*roots: int) -> list[int]:
    """The processes `roots` and all their descendants."""
    kids, out, todo = _parents(), [], list(roots)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += kids.get(pid, [])
    return out


def by_name(name: str) -> list[int]:
    """Processes whose command name is exactly `name` (as `pgrep -x`), e.g. beam.smp, redis-server."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


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
