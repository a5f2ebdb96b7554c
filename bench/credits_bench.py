"""Benchmark: reserve+commit pairs per second through the credits service (RabbitMQ →
credits → MongoDB → reply), against raw pymongo find_one_and_update calls per second on the
same MongoDB-protocol server, measured in the same run with the same concurrency.

    make bench          (writes bench/results/credits.json)

The ratio pairs/s ÷ raw calls/s is the figure to watch (target ≥ 0.5): a pair is two
ledger operations, each one conditional update plus the broker round trips.

Two more references, measured in the same rounds, say where the time goes: raw
"ledger-shaped" pairs (the two conditional updates a pair makes, straight from pymongo, no
service) and the bus ceiling (pairs through bench/echo_ledger.py, the same runtime and bus
answering at once with no storage). No ledger behind this bus can beat the ceiling.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient, ReturnDocument

from bench.cpu import find_pid, with_cpu
from bench.load import median_ratio, medians, run_for, write_results
from common.bus import Bus, RpcClient, Topology
from common.contracts import Actor, Caller
from common.credits import CreditsClient
from devstack import ROOT, Stack

CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "32"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
USERS = 64
RESULTS = ROOT / "bench" / "results" / "credits.json"


async def raw_round(mongo_url: str, database: str, *, ledger_shaped: bool) -> dict[str, float]:
    """Raw pymongo on the same server. Plain: one `$inc` find_one_and_update per call.
    Ledger-shaped: the two conditional updates of a reserve+commit pair with their unique ids,
    nothing around them (mongoeco compiles every distinct query, so unique literals cost more
    there than on MongoDB)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, tz_aware=True, maxPoolSize=CONCURRENCY + 4)
    col = client[database][f"raw_bench_{uuid.uuid4().hex[:6]}"]
    await col.insert_many(
        [{"_id": f"u{i}", "credits": 10**9, "reserved": 0, "spent": 0, "holds": [], "seen": []} for i in range(USERS)]
    )

    async def plain(i: int, n: int) -> None:
        await col.find_one_and_update(
            {"_id": f"u{i % USERS}", "credits": {"$gte": 1}},
            {"$inc": {"credits": -1, "reserved": 1}},
            return_document=ReturnDocument.AFTER,
        )

    async def ledger(i: int, n: int) -> None:
        user, rid = f"u{i % USERS}", uuid.uuid4().hex
        await col.find_one_and_update(
            {"_id": user, "credits": {"$gte": 1}, "seen": {"$ne": rid}, "holds.id": {"$ne": rid}},
            {
                "$inc": {"credits": -1, "reserved": 1},
                "$push": {"holds": {"id": rid, "amount": 1}, "seen": {"$each": [rid], "$slice": -1000}},
            },
            return_document=ReturnDocument.AFTER,
        )
        await col.find_one_and_update(
            {"_id": user, "holds": {"$elemMatch": {"id": rid, "amount": 1}}},
            {"$inc": {"reserved": -1, "spent": 1}, "$pull": {"holds": {"id": rid}}},
            return_document=ReturnDocument.AFTER,
        )

    try:
        return await run_for(SECONDS, ledger if ledger_shaped else plain, concurrency=CONCURRENCY)
    finally:
        await col.drop()
        await client.close()


async def pairs_round(amqp_url: str, namespace: str) -> dict[str, float]:
    bus = Bus(url=amqp_url, topology=Topology(namespace), service="bench")
    await bus.connect()
    rpc = RpcClient(bus, process="bench")
    await rpc.start()
    credits = CreditsClient(rpc)
    actors = [Actor(id=f"bench-user-{i}", email=f"b{i}@example.com", role="user") for i in range(USERS)]

    async def worker(i: int, n: int) -> None:
        caller = Caller(
            request_id=f"bench-{i}-{n}", actor=actors[i % USERS], deadline=datetime.now(UTC) + timedelta(seconds=30)
        )
        reservation = await credits.reserve(caller, reservation_id=uuid.uuid4(), amount=1, purpose="bench")
        await credits.commit(caller, reservation, amount=1)

    await asyncio.gather(
        *(credits.balance(Caller("warm", a, datetime.now(UTC) + timedelta(seconds=30))) for a in actors)
    )
    try:
        return await run_for(SECONDS, worker, concurrency=CONCURRENCY)
    finally:
        await bus.close()


async def main() -> None:
    namespace = f"bench{uuid.uuid4().hex[:6]}"
    echo_namespace = f"{namespace}echo"
    stack = Stack(
        namespace=namespace,
        data_dir=ROOT / ".data" / "bench",
        extra_env={"SIGNUP_CREDITS": str(10**9), "BUS_PREFETCH": str(CONCURRENCY * 2), "MONGODB_DATABASE": namespace},
    )
    echo = Stack(
        namespace=echo_namespace,
        data_dir=ROOT / ".data" / "bench",
        extra_env={"BUS_PREFETCH": str(CONCURRENCY * 2)},
    )
    stack.check_infrastructure()
    amqp_url = stack.env.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    try:
        stack.start_mongo()
        stack.start_service("credits")
        echo.start_service("credits", module="bench.echo_ledger")
        mongo_url = stack.env["MONGODB_URL"]
        pids = {
            "bench": os.getpid(),
            "credits": stack.processes["credits"].pid,
            "echo_ledger": echo.processes["credits"].pid,
        }
        if "mongo" in stack.processes:
            pids["mongodb"] = stack.processes["mongo"].pid
        if rabbitmq := find_pid("beam.smp"):
            pids["rabbitmq"] = rabbitmq
        measured = {name: pid for name, pid in pids.items() if pid is not None}
        rounds: dict[str, list[dict[str, Any]]] = {"raw": [], "raw_ledger_shaped": [], "pairs": [], "bus_ceiling": []}
        for _ in range(ROUNDS):  # interleaved, so drift in machine load hits all alike
            for name, work in (
                ("raw", raw_round(mongo_url, namespace, ledger_shaped=False)),
                ("raw_ledger_shaped", raw_round(mongo_url, namespace, ledger_shaped=True)),
                ("pairs", pairs_round(amqp_url, namespace)),
                ("bus_ceiling", pairs_round(amqp_url, echo_namespace)),
            ):
                figures, used = await with_cpu(work, measured)
                rounds[name].append({**figures, "cpu_percent": used})
    finally:
        echo.stop()
        stack.stop()
        from tests.support.broker import delete_namespace

        for ns in (namespace, echo_namespace):
            await delete_namespace(amqp_url, ns)

    raw, raw_ledger, pairs, ceiling = rounds["raw"], rounds["raw_ledger_shaped"], rounds["pairs"], rounds["bus_ceiling"]

    def cpu(rows: list[dict[str, Any]]) -> dict[str, float]:
        return {p: round(statistics.median(r["cpu_percent"][p] for r in rows), 1) for p in rows[0]["cpu_percent"]}

    result = {
        "benchmark": "credits reserve+commit pairs vs raw find_one_and_update",
        "concurrency": CONCURRENCY,
        "seconds_per_round": SECONDS,
        "rounds": ROUNDS,
        "mongodb": "MONGODB_URL" if os.environ.get("MONGODB_URL") else "mongoeco (local)",
        "raw_find_one_and_update": medians(raw),
        "reserve_commit_pairs": medians(pairs),
        "raw_ledger_shaped_pairs": medians(raw_ledger),
        "ratio_pairs_to_raw": median_ratio(pairs, raw),
        "target_ratio": 0.5,
        "ratio_pairs_to_raw_ledger_shaped": median_ratio(pairs, raw_ledger),
        "bus_ceiling_pairs": medians(ceiling),
        "ratio_bus_ceiling_to_raw": median_ratio(ceiling, raw),
        "ratio_pairs_to_bus_ceiling": median_ratio(pairs, ceiling),
        "cpu_percent_of_one_core": {name: cpu(rows) for name, rows in rounds.items()},
        "cores": os.cpu_count(),
        "rounds_detail": rounds,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_results(RESULTS, result)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    asyncio.run(main())
