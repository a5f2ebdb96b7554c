"""What wrk drives in the side-by-side benchmark: the scenarios, the sides (a URL, a Lua script
per number of accounts, the processes whose CPU it costs, in parts), and one measured run."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cpu, litellm_env, wrk
from bench.our_stack import OurStack
from devstack import free_port

USERS = 20


@dataclass(frozen=True)
class Scenario:
    cached: bool
    users: int
    conns: int
    sides: tuple[str, ...]
    threaded: bool = False  # our requests continue each user's thread (LiteLLM's are the uncached ones)

    @property
    def key(self) -> str:
        kind = "threaded" if self.threaded else "cached" if self.cached else "uncached"
        return f"{kind}-{self.users}u-c{self.conns}"

    @property
    def script(self) -> tuple[int, bool]:
        """Which of a side's scripts it runs: by number of accounts, threaded or not."""
        return self.users, self.threaded


SCENARIOS = (
    Scenario(False, USERS, 1, ("direct", "litellm", "ours", "ours_history")),
    Scenario(False, USERS, 16, ("direct", "litellm", "ours", "ours_history")),
    Scenario(False, USERS, 64, ("direct", "litellm", "ours")),
    Scenario(False, 1, 16, ("litellm", "ours", "ours_history")),
    Scenario(False, USERS, 16, ("litellm", "ours"), threaded=True),
    Scenario(True, USERS, 1, ("litellm", "ours")),
    Scenario(True, USERS, 16, ("litellm", "ours")),
)


@dataclass
class Side:
    name: str
    url: str
    scripts: dict[tuple[int, bool], Path]  # by Scenario.script
    pids: Callable[[], dict[str, list[int]]]  # the side's processes, in parts


class Upstream:
    def __init__(self, venv: Path, work: Path) -> None:
        self.port = free_port()
        self.proc = litellm_env.start_upstream(venv, port=self.port, work=work)

    def calls(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=5) as response:
            return int(json.load(response)["chat_completions"])

    def pids(self) -> dict[str, list[int]]:
        return {"upstream": cpu.tree(self.proc.pid)}


def measure(side: Side, scenario: Scenario, upstream: Upstream, *, seconds: float) -> dict[str, Any]:
    """One wrk run against a side, with the CPU its processes used per request, in total and by
    part. `cpu_ms_per_req_compare_py` is compare.py's figure: the upstream's CPU taken off every
    proxy side, and LiteLLM's Redis (cached mode) not counted."""
    parts, up = side.pids(), upstream.pids()["upstream"]
    before = {part: cpu.total_cpu_seconds(pids) for part, pids in parts.items()}
    up0, calls0 = cpu.total_cpu_seconds(up), upstream.calls()
    figures = wrk.run(side.url, side.scripts[scenario.script], conns=scenario.conns, seconds=seconds)
    used = {part: cpu.total_cpu_seconds(pids) - before[part] for part, pids in parts.items()}
    up_cpu, calls = cpu.total_cpu_seconds(up) - up0, upstream.calls() - calls0
    n = int(figures["requests"])
    own = sum(used.values())
    compare_py = own - used.get("redis_cache", 0.0) - (0.0 if side.name == "direct" else up_cpu)

    def per_req(seconds: float) -> float | None:
        return round(1000 * seconds / n, 3) if n else None

    return {
        **figures,
        "scenario": scenario.key,
        "side": side.name,
        "conns": scenario.conns,
        "users": scenario.users,
        "cpu_s": round(own, 3),
        "upstream_cpu_s": round(up_cpu, 3),
        "upstream_calls": calls,
        "cpu_ms_per_req": per_req(own),
        "cpu_ms_per_req_by_part": {part: per_req(seconds) for part, seconds in used.items()},
        "cpu_ms_per_req_compare_py": per_req(compare_py),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def idle_cpu(sides: list[Side], *, seconds: float) -> dict[str, dict[str, float]]:
    """Each side's CPU use with no load, in % of one core, by part: background work (sweepers,
    flushers, timers) and, for the shared RabbitMQ and Redis, whatever else uses them."""
    parts = {side.name: side.pids() for side in sides}
    before = {name: {p: cpu.total_cpu_seconds(pids) for p, pids in group.items()} for name, group in parts.items()}
    time.sleep(seconds)
    return {
        name: {
            p: round(100 * (cpu.total_cpu_seconds(pids) - before[name][p]) / seconds, 1) for p, pids in group.items()
        }
        for name, group in parts.items()
    }


def our_side(name: str, stack: OurStack, work: Path, *, cached: bool, hot_email: str) -> Side:
    emails = [f"bench-{stack.namespace}-{i}@example.com" for i in range(USERS)]
    tokens = stack.tokens(emails)
    scripts = {
        (USERS, False): wrk.write_script(work / f"{name}-{USERS}.lua", tokens, cached=cached),
        (1, False): wrk.write_script(work / f"{name}-1.lua", stack.tokens([hot_email]), cached=cached),
    }
    if not cached:
        threads = [stack.new_thread(token) for token in tokens]
        scripts[USERS, True] = wrk.write_script(
            work / f"{name}-{USERS}-threaded.lua", tokens, cached=False, threads=threads
        )
    return Side(name, stack.url, scripts, stack.pids)
