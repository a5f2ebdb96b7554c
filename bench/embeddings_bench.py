"""Benchmark: `POST /v1/embeddings` end to end (HTTP → gateway → RabbitMQ → chat → credits reserve
and commit → OpenAI embeddings on the simulator → back), against the simulator called directly
with the official `openai` SDK, in the same run and at the same concurrency, so the latency the
platform adds is reported beside the provider's own.

    flock /tmp/bench.lock env PYTHONPATH=tools:. .venv/bin/python bench/embeddings_bench.py
    (writes bench/results/embeddings.json; BENCH_CONCURRENCY, BENCH_SECONDS, BENCH_ROUNDS, BENCH_INPUTS)

Every service runs as its own process (as `make run` starts them); the simulator runs in this
process. Each request embeds BENCH_INPUTS different texts with `text-embedding-3-small` (1,536
dimensions), asked for in base64 as the SDK asks.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import openai

from bench.load import medians, run_for, write_results
from bench.sim_stack import bench_users, simulated_stack
from devstack import ROOT
from tests.simulator.server import run_simulator

CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
INPUTS = int(os.environ.get("BENCH_INPUTS", "8"))
MODEL = "text-embedding-3-small"
RESULTS = ROOT / "bench" / "results" / "embeddings.json"


def texts(run: str, i: int, n: int) -> list[str]:
    return [f"text {k} of request {n} by worker {i} in {run}" for k in range(INPUTS)]


async def direct_round(openai_url: str) -> dict[str, float]:
    run = uuid.uuid4().hex[:8]
    async with openai.AsyncOpenAI(base_url=openai_url, api_key="sim-openai-key", max_retries=0) as client:

        async def worker(i: int, n: int) -> bool:
            reply = await client.embeddings.create(model=MODEL, input=texts(run, i, n), encoding_format="base64")
            return len(reply.data) == INPUTS

        return await run_for(SECONDS, worker, concurrency=CONCURRENCY)


async def gateway_round(http: httpx.AsyncClient, users: list[dict[str, str]]) -> dict[str, float]:
    run = uuid.uuid4().hex[:8]

    async def worker(i: int, n: int) -> bool:
        body = {"model": MODEL, "input": texts(run, i, n), "encoding_format": "base64"}
        response = await http.post("/v1/embeddings", json=body, headers=users[i])
        return response.status_code == 200 and len(response.json()["data"]) == INPUTS

    return await run_for(SECONDS, worker, concurrency=CONCURRENCY)


async def main() -> None:
    namespace = f"bench{uuid.uuid4().hex[:6]}"
    data_dir = ROOT / ".data" / "bench"
    with run_simulator() as simulator:
        stack = simulated_stack(simulator, namespace=namespace, data_dir=data_dir, concurrency=CONCURRENCY)
        stack.check_infrastructure()
        users = bench_users(data_dir, CONCURRENCY)
        direct, gateway = [], []
        try:
            stack.start()
            limits = httpx.Limits(max_connections=CONCURRENCY * 2, max_keepalive_connections=CONCURRENCY * 2)
            async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30, limits=limits) as http:
                warm = {"model": MODEL, "input": "warm up"}
                for user in users:  # accounts exist before timing starts
                    assert (await http.post("/v1/embeddings", json=warm, headers=user)).status_code == 200
                for _ in range(ROUNDS):  # interleaved, so drift in machine load hits both alike
                    direct.append(await direct_round(simulator.base_urls.openai))
                    gateway.append(await gateway_round(http, users))
        finally:
            stack.stop()
            from tests.support.broker import delete_namespace

            await delete_namespace(stack.env.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"), namespace)

    d, g = (medians(rows, rows[0]) for rows in (direct, gateway))
    result = {
        "benchmark": "embeddings end to end (gateway → chat → credits → simulated OpenAI) vs the simulator directly",
        "concurrency": CONCURRENCY,
        "inputs_per_request": INPUTS,
        "seconds_per_round": SECONDS,
        "rounds": ROUNDS,
        "simulator_direct": d,
        "gateway": g,
        "added_latency_ms": {"p50": round(g["p50_ms"] - d["p50_ms"], 2), "p99": round(g["p99_ms"] - d["p99_ms"], 2)},
        "note": "gateway = reserve + provider call + commit + usage record. One machine runs the client, the "
        "simulator and all services.",
        "rounds_detail": {"direct": direct, "gateway": gateway},
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_results(RESULTS, result)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    asyncio.run(main())
