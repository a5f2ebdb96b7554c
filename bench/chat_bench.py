"""Benchmark: the chat path end to end (HTTP → gateway → RabbitMQ → chat → credits reserve and
commit → provider → back), uncached and cached, against the provider simulator called
directly with its official SDK, in the same run and at the same concurrency, so the latency
the platform adds is reported beside the provider's own.

    make bench          (writes bench/results/chat.json)

Every service runs as its own process (as `make run` starts them); the simulator runs in this
process. Uncached requests are all different prompts; cached ones repeat one warmed prompt.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from google import genai
from google.genai import types

from bench.load import medians, run_for, write_results
from bench.sim_stack import bench_users, simulated_stack
from devstack import ROOT
from tests.simulator.server import run_simulator

CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
MODEL = "gemini-2.5-flash"
RESULTS = ROOT / "bench" / "results" / "chat.json"


async def direct_round(gemini_url: str) -> dict[str, float]:
    client = genai.Client(api_key="sim-gemini-key", http_options=types.HttpOptions(base_url=gemini_url))

    async def worker(i: int, n: int) -> bool:
        reply = await client.aio.models.generate_content(model=MODEL, contents=f"direct {i} {n} {uuid.uuid4().hex}")
        return bool(reply.text)

    try:
        return await run_for(SECONDS, worker, concurrency=CONCURRENCY)
    finally:
        await client.aio.aclose()
        client.close()


async def gateway_round(http: httpx.AsyncClient, users: list[dict[str, str]], *, cached: bool) -> dict[str, float]:
    run = uuid.uuid4().hex[:8]

    async def worker(i: int, n: int) -> bool:
        text = "what does a cache save?" if cached else f"uncached {run} {i} {n}"
        body = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
        response = await http.post("/v1/chat", json=body, headers=users[i])
        return response.status_code == 200 and response.json()["cached"] is cached

    return await run_for(SECONDS, worker, concurrency=CONCURRENCY)


async def main() -> None:
    namespace = f"bench{uuid.uuid4().hex[:6]}"
    data_dir = ROOT / ".data" / "bench"
    with run_simulator() as simulator:
        stack = simulated_stack(simulator, namespace=namespace, data_dir=data_dir, concurrency=CONCURRENCY)
        stack.check_infrastructure()
        users = bench_users(data_dir, CONCURRENCY)
        direct, uncached, cached = [], [], []
        try:
            stack.start()
            limits = httpx.Limits(max_connections=CONCURRENCY * 2, max_keepalive_connections=CONCURRENCY * 2)
            async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30, limits=limits) as http:
                warm = {"model": MODEL, "messages": [{"role": "user", "content": "what does a cache save?"}]}
                for user in users:  # accounts exist and the cached prompt is stored before timing starts
                    assert (await http.post("/v1/chat", json=warm, headers=user)).status_code == 200
                for _ in range(ROUNDS):  # interleaved, so drift in machine load hits all alike
                    direct.append(await direct_round(simulator.base_urls.gemini))
                    uncached.append(await gateway_round(http, users, cached=False))
                    cached.append(await gateway_round(http, users, cached=True))
        finally:
            stack.stop()
            from tests.support.broker import delete_namespace

            await delete_namespace(stack.env.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"), namespace)

    d, u, c = (medians(rows, rows[0]) for rows in (direct, uncached, cached))
    result = {
        "benchmark": "chat end to end (gateway → chat → credits → simulated Gemini) vs the simulator called directly",
        "concurrency": CONCURRENCY,
        "seconds_per_round": SECONDS,
        "rounds": ROUNDS,
        "simulator_direct": d,
        "gateway_uncached": u,
        "gateway_cached": c,
        "added_latency_ms": {
            "uncached_p50": round(u["p50_ms"] - d["p50_ms"], 2),
            "uncached_p99": round(u["p99_ms"] - d["p99_ms"], 2),
        },
        "note": "uncached = reserve + provider call + cache fill + commit + usage record; cached = cache read only "
        "(hit price 0: no ledger calls). One machine runs the client, the simulator and all services.",
        "rounds_detail": {"direct": direct, "uncached": uncached, "cached": cached},
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_results(RESULTS, result)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    asyncio.run(main())
