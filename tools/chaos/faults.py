"""The fault injector: one class per kind of fault, each returning when it injected the fault
and when it healed it. The soak runs them one at a time, in random order, with random gaps.

- `sigkill`: SIGKILL of one process (any service, gateway included), then its restart.
- `broker`: RabbitMQ `stop_app` / `start_app` (the machine's broker: opt-in).
- `mongo`: the stack's MongoDB-protocol server restarted on its port, on its SQLite file.
- `redis`: the link to Redis cut for a while (a proxy; the machine's Redis keeps running).
- `provider_5xx`, `provider_429`, `provider_timeout`, `provider_malformed`: the simulator's
  providers fail the next calls that way; healed once every such call was used up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import httpx

from chaos.proxy import TcpProxy
from devstack import Process, Stack


@dataclass
class Injection:
    kind: str
    target: str
    injected: float  # wall clock, seconds
    healed: float | None  # None: it did not heal within its bound
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Fault(Protocol):
    kind: str

    async def inject(self) -> Injection: ...


class SigKill:
    """SIGKILL one process of the stack, then start it again (same name, same replica)."""

    kind = "sigkill"

    def __init__(self, stack: Stack, targets: Sequence[str], rng: random.Random) -> None:
        self.stack, self.targets, self.rng = stack, list(targets), rng

    async def inject(self) -> Injection:
        target = self.rng.choice(self.targets)
        injected = time.time()
        await asyncio.to_thread(self.stack.processes[target].kill)
        await asyncio.to_thread(restart, self.stack, target)
        return Injection(self.kind, target, injected, time.time())


def restart(stack: Stack, name: str) -> None:
    service, _, replica = name.partition("-")
    stack.start_service(service, replica=name if replica else None, timeout=90)


class BrokerRestart:
    kind = "broker"

    def __init__(self, restart_broker: Callable[[], None]) -> None:
        self.restart_broker = restart_broker

    async def inject(self) -> Injection:
        injected = time.time()
        await asyncio.to_thread(self.restart_broker)
        return Injection(self.kind, "rabbitmq", injected, time.time(), "rabbitmqctl stop_app / start_app")


class MongoRestart:
    """Stop the stack's mongoeco and start it again on the same port and SQLite file."""

    kind = "mongo"

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    async def inject(self) -> Injection:
        old = self.stack.processes["mongo"]
        injected = time.time()
        await asyncio.to_thread(old.stop)
        new = Process("mongo", old.argv, env=old.env, log_file=old.log_file, echo=False).start()
        self.stack.processes["mongo"] = new
        await asyncio.to_thread(new.wait_for_line, lambda s: s.startswith('{"uri"'), timeout=60)
        return Injection(self.kind, "mongoeco", injected, time.time())


class RedisCut:
    kind = "redis"

    def __init__(self, proxy: TcpProxy, rng: random.Random, *, seconds: tuple[float, float]) -> None:
        self.proxy, self.rng, self.seconds = proxy, rng, seconds

    async def inject(self) -> Injection:
        length = self.rng.uniform(*self.seconds)
        injected = time.time()
        await self.proxy.cut_off()
        await asyncio.sleep(length)  # the outage itself: its length is the fault
        await self.proxy.restore()
        return Injection(self.kind, "redis link", injected, time.time(), f"cut for {length:.1f}s")


PROVIDER_FAULTS: dict[str, list[dict[str, Any]]] = {
    "provider_5xx": [
        {"provider": "gemini", "status": 503, "times": 6},
        {"provider": "openai", "status": 500, "times": 4},
        {"provider": "replicate", "status": 500, "endpoint": "predictions.create", "times": 2},
        {"provider": "cloudinary", "status": 500, "endpoint": "upload", "times": 1},
    ],
    "provider_429": [
        {"provider": "gemini", "status": 429, "retry_after": 1, "times": 6},
        {"provider": "openai", "status": 429, "retry_after": 1, "times": 4},
        {"provider": "replicate", "status": 429, "retry_after": 1, "endpoint": "predictions.create", "times": 2},
    ],
    "provider_timeout": [
        {"provider": "gemini", "hang": True, "hang_s": 30, "times": 3},
        {"provider": "openai", "hang": True, "hang_s": 30, "times": 2},
        {"provider": "replicate", "hang": True, "hang_s": 30, "endpoint": "predictions.create", "times": 1},
    ],
    "provider_malformed": [
        {"provider": "gemini", "malformed": True, "times": 4},
        {"provider": "openai", "malformed": True, "times": 3},
    ],
}


class ProviderFault:
    """Queue failures in the simulator; healed when the providers have used every one up."""

    def __init__(self, kind: str, simulator_url: str, *, within: float = 30.0) -> None:
        self.kind, self.url, self.within = kind, simulator_url, within

    async def inject(self) -> Injection:
        specs = PROVIDER_FAULTS[self.kind]
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as sim:
            injected = time.time()
            (await sim.post("/_sim/faults", json=specs)).raise_for_status()
            deadline = time.monotonic() + self.within
            while (await sim.get("/_sim/faults")).json()["faults"]:
                if time.monotonic() > deadline:
                    left = (await sim.get("/_sim/faults")).json()["faults"]
                    return Injection(self.kind, "providers", injected, None, f"not all used: {json.dumps(left)}")
                await asyncio.sleep(0.1)
        return Injection(self.kind, "providers", injected, time.time(), ", ".join(s["provider"] for s in specs))


class Injector:
    """Rounds of every fault kind in random order, a random gap before each, until `stop`; the
    first round always completes, so every kind is injected at least once however short the run."""

    def __init__(self, faults: Sequence[Fault], rng: random.Random, *, gap: tuple[float, float]) -> None:
        self.faults, self.rng, self.gap = list(faults), rng, gap
        self.injections: list[Injection] = []

    async def run(self, stop: asyncio.Event) -> None:
        first = True
        while first or not stop.is_set():
            for fault in self.rng.sample(self.faults, len(self.faults)):
                gap = self.rng.uniform(*self.gap)
                if first:
                    await asyncio.sleep(gap)  # the gap between faults is itself part of the schedule
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), gap)
                    if stop.is_set():
                        return
                self.injections.append(await fault.inject())
            first = False
