"""Benchmark (goal 6): reserve+commit pairs per second through the credits service (RabbitMQ →
credits → MongoDB → reply) against raw pymongo `find_one_and_update` calls per second on the
same MongoDB-protocol server, in the same run at the same concurrency, for one hot account
and for 1,000 accounts. Target: pairs/s ≥ raw calls/s in both.

    make bench          (writes bench/results/credits.json)

The store is the one `make run` starts: mongoeco on its SQLite engine, in a throwaway data
dir. The benchmark speaks to the credits service only through the message contracts
(ReserveCredits and CommitReservation via common.credits.CreditsClient), so it measures any
ledger storage design unchanged. Each account is used once (a pair) before timing starts.

One more reference, measured in the same rounds: the bus ceiling, pairs through
bench/echo_ledger.py (the same runtime and bus answering at once, with no storage). No ledger
behind this bus can beat it; pairs ÷ ceiling is the ledger's own share of the cost.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import statistics
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient, ReturnDocument

from bench.cpu import find_pid, with_cpu
from bench.load import median_ratio, medians, run_for, write_results
from common.bus import Bus, RpcClient, Topology
from common.contracts import Actor, Caller
from common.credits import CreditsClient
from devstack import DEFAULT_AMQP_URL, ROOT, Stack

CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "32"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
SCENARIOS = {"hot_account": 1, "accounts_1000": 1000}
CEILING_ACCOUNTS = 1000
TARGET_RATIO = 1.0
RESULTS = ROOT / "bench" / "results" / "credits.json"


def pick(accounts: int) -> int:
    return 0 if accounts == 1 else random.randrange(accounts)


async def raw_round(mongo_url: str, database: str, *, accounts: int) -> dict[str, float]:
    """One conditional `$inc` find_one_and_update per call, returning the document: the
    simplest write a reserve could be, on the same server, on `accounts` documents."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, tz_aware=True, maxPoolSize=CONCURRENCY + 4)
    col = client[database][f"raw_bench_{uuid.uuid4().hex[:6]}"]
    await col.insert_many([{"_id": f"u{i}", "credits": 10**9, "reserved": 0, "spent": 0} for i in range(accounts)])

    async def call(i: int, n: int) -> bool:
        doc = await col.find_one_and_update(
            {"_id": f"u{pick(accounts)}", "credits": {"$gte": 1}},
            {"$inc": {"credits": -1, "reserved": 1}},
            return_document=ReturnDocument.AFTER,
        )
        return doc is not None

    try:
        return await run_for(SECONDS, call, concurrency=CONCURRENCY)
    finally:
        await col.drop()
        await client.close()


class Pairs:
    """Reserve+commit pairs through whatever consumes the credits commands of a namespace."""

    def __init__(self, amqp_url: str, namespace: str, *, name: str, accounts: int) -> None:
        self.bus = Bus(url=amqp_url, topology=Topology(namespace), service="bench")
        self.actors = [
            Actor(id=f"bench-{name}-{i}", email=f"{name}-{i}@example.com", role="user") for i in range(accounts)
        ]

    async def __aenter__(self) -> Pairs:
        await self.bus.connect()
        rpc = RpcClient(self.bus, process="bench")
        await rpc.start()
        self.credits = CreditsClient(rpc)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.bus.close()

    async def pair(self, actor: Actor, request_id: str) -> bool:
        caller = Caller(request_id=request_id, actor=actor, deadline=datetime.now(UTC) + timedelta(seconds=30))
        try:
            reservation = await self.credits.reserve(caller, reservation_id=uuid.uuid4(), amount=1, purpose="bench")
            await self.credits.commit(caller, reservation, amount=1)
        except Exception as exc:  # a failed pair counts as a failure, not a call
            print(f"pair failed: {exc!r}", flush=True)
            return False
        return True

    async def warm(self) -> None:
        """One pair per account, so first-sight work (account, signup grant) is done before timing."""
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(actor: Actor) -> bool:
            async with gate:
                return await self.pair(actor, f"warm-{actor.id}")

        done = await asyncio.gather(*(one(a) for a in self.actors))
        if not all(done):
            raise RuntimeError(f"{done.count(False)} warm-up pairs failed")

    async def round(self) -> dict[str, float]:
        accounts = len(self.actors)

        async def worker(i: int, n: int) -> bool:
            return await self.pair(self.actors[pick(accounts)], f"bench-{i}-{n}")

        return await run_for(SECONDS, worker, concurrency=CONCURRENCY)


def log(*parts: object) -> None:
    print(time.strftime("%H:%M:%S"), *parts, flush=True)


def cpu_medians(rows: list[dict[str, Any]]) -> dict[str, float]:
    return {p: round(statistics.median(r["cpu_percent"][p] for r in rows), 1) for p in rows[0]["cpu_percent"]}


def verdict(pairs: list[dict[str, Any]], raw: list[dict[str, Any]], ratio: float) -> str:
    failures = sum(r["failures"] for r in pairs + raw)
    if failures:
        return f"invalid: {failures} failed calls"
    return "pass" if ratio >= TARGET_RATIO else "fail"


async def main() -> None:
    namespace = f"bench{uuid.uuid4().hex[:6]}"
    echo_namespace = f"{namespace}echo"
    data_dir = Path(tempfile.mkdtemp(prefix="bench-credits-"))
    prefetch = {"BUS_PREFETCH": str(CONCURRENCY * 2)}
    stack = Stack(
        namespace=namespace,
        data_dir=data_dir,
        extra_env={"SIGNUP_CREDITS": str(10**9), "MONGODB_DATABASE": namespace, **prefetch},
        persist_mongo=True,
    )
    echo = Stack(namespace=echo_namespace, data_dir=data_dir / "echo", extra_env=prefetch)
    stack.check_infrastructure()
    amqp_url = stack.env.get("AMQP_URL", DEFAULT_AMQP_URL)
    rounds: dict[str, list[dict[str, Any]]] = {}
    try:
        stack.start_mongo()
        stack.start_service("credits")
        echo.start_service("credits", module="bench.echo_ledger")
        mongo_url = stack.env["MONGODB_URL"]
        pids = {
            "bench": os.getpid(),
            "credits": stack.processes["credits"].pid,
            "echo_ledger": echo.processes["credits"].pid,
            "mongodb": stack.processes["mongo"].pid if "mongo" in stack.processes else None,
            "rabbitmq": find_pid("beam.smp"),
        }
        measured = {name: pid for name, pid in pids.items() if pid is not None}
        async with AsyncExitStack() as opened:
            clients = {
                name: await opened.enter_async_context(Pairs(amqp_url, namespace, name=name, accounts=n))
                for name, n in SCENARIOS.items()
            }
            clients["bus_ceiling"] = await opened.enter_async_context(
                Pairs(amqp_url, echo_namespace, name="ceiling", accounts=CEILING_ACCOUNTS)
            )
            for name, client in clients.items():
                log(f"warming {len(client.actors)} account(s) for {name}")
                await client.warm()
            for rnd in range(ROUNDS):  # interleaved, so drift in machine load hits all alike
                jobs = []
                for name, accounts in SCENARIOS.items():
                    jobs += [(f"{name}/raw", lambda a=accounts: raw_round(mongo_url, namespace, accounts=a))]
                    jobs += [(f"{name}/pairs", clients[name].round)]
                jobs += [("bus_ceiling", clients["bus_ceiling"].round)]
                for key, job in jobs:
                    figures, used = await with_cpu(job(), measured)
                    rounds.setdefault(key, []).append({**figures, "cpu_percent": used})
                    log(
                        f"round {rnd} {key}: {figures['per_s']}/s, p50 {figures['p50_ms']} ms, "
                        f"failures {figures['failures']}"
                    )
    finally:
        echo.stop()
        stack.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        from tests.support.broker import delete_namespace

        for ns in (namespace, echo_namespace):
            await delete_namespace(amqp_url, ns)

    ceiling = rounds["bus_ceiling"]
    scenarios, goal = {}, []
    for name, accounts in SCENARIOS.items():
        raw, pairs = rounds[f"{name}/raw"], rounds[f"{name}/pairs"]
        ratio = median_ratio(pairs, raw)
        result = verdict(pairs, raw, ratio)
        scenarios[name] = {
            "accounts": accounts,
            "raw_find_one_and_update": medians(raw),
            "reserve_commit_pairs": medians(pairs),
            "failures": {"raw": sum(r["failures"] for r in raw), "pairs": sum(r["failures"] for r in pairs)},
            "ratio_pairs_to_raw": ratio,
            "ratio_pairs_to_bus_ceiling": median_ratio(pairs, ceiling),
            "result": result,
            "cpu_percent_of_one_core": {"raw": cpu_medians(raw), "pairs": cpu_medians(pairs)},
        }
        goal.append(
            {
                "check": f"{accounts} account(s): reserve+commit pairs/s ÷ raw find_one_and_update/s",
                "target": f"≥ {TARGET_RATIO:g}",
                "measured": ratio,
                "result": result,
            }
        )
    result = {
        "benchmark": "credits reserve+commit pairs vs raw find_one_and_update (goal 6)",
        "concurrency": CONCURRENCY,
        "seconds_per_round": SECONDS,
        "rounds": ROUNDS,
        "mongodb": "MONGODB_URL" if os.environ.get("MONGODB_URL") else "mongoeco, SQLite engine (as make run)",
        "goal_6": goal,
        "scenarios": scenarios,
        "bus_ceiling_pairs": {**medians(ceiling), "accounts": CEILING_ACCOUNTS, "cpu_percent": cpu_medians(ceiling)},
        "cores": os.cpu_count(),
        "rounds_detail": rounds,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_results(RESULTS, result)


if __name__ == "__main__":
    asyncio.run(main())
