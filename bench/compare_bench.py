"""Benchmark: our chat path side by side with the LiteLLM proxy, in one run on this machine.
The project's own version of ../shared/bench/compare.py, which stays the reference
measurement: for the same scenario the two must agree.

    make bench        (this first; writes bench/results/compare.json and compare.md, prints both tables)
    BENCH_SECONDS=5 BENCH_ROUNDS=1 PYTHONPATH=tools:. .venv/bin/python bench/compare_bench.py

wrk sends the same requests (an OpenAI chat completion, a random bearer token of the side's
list) to: the fake OpenAI upstream called directly (bench/fake_openai.py, answering at once:
the floor), LiteLLM in front of it (bench/litellm_env.py), and our whole stack in front of it
(bench/our_stack.py: mongoeco on its SQLite engine as `make run` starts it, the four services,
RabbitMQ, Redis). Two phases, each with its own LiteLLM and stack:

- uncached (every prompt different; our prompt cache off, LiteLLM without cache): 20 accounts
  at c=1, 16, 64, and one hot account at c=16. When bench/history.py exists (goal 4), a second
  stack whose store it first filled with a large ledger history runs the c=1, c=16 and hot
  scenarios in the same rounds; its hot account is the one the history gave 50,000 operations;
- threaded (uncached, 20 accounts at c=16): each of our requests continues its user's thread
  (one per account, made before the runs, growing through them, so later requests send up to
  CHAT_THREAD_MAX_TURNS earlier turns); LiteLLM gets the uncached requests, since it keeps no
  conversations. Checked against LiteLLM as goals 1 and 3 are, and against our own unthreaded
  uncached-20u-c16 (the thread's reads and writes cost at most a fifth of the throughput);
- cached (one repeated prompt; our prompt cache, LiteLLM's Redis cache): 20 accounts at c=1, 16.

Rounds are interleaved (each side of each scenario once per round), so drift on this shared
machine hits every side alike; figures are medians over rounds. CPU per request comes from
/proc, over each side's processes: the upstream's for the direct side, LiteLLM's process tree,
and for ours every process of the stack and its children (mongoeco included) plus RabbitMQ's
beam.smp and redis-server. The upstream's CPU belongs to no proxy side. compare.py
subtracts it from both proxies' CPU nevertheless; that figure is kept as
`cpu_ms_per_req_compare_py` for the comparison with compare.py, while the goals use the
side's own CPU (`cpu_ms_per_req`). Each run also records how many calls reached the upstream,
which tells a cache hit from a miss.

Settings: BENCH_SECONDS per run (default 8), BENCH_ROUNDS (3: an odd count, so that each median
is one measured round, not the mean of two), BENCH_WARMUP_SECONDS (5), BENCH_SCENARIOS (scenario
keys to run, comma-separated, e.g. uncached-20u-c16; default all);
goal 4's history size BENCH_HISTORY_ACCOUNTS (10000), BENCH_HISTORY_OPERATIONS (200000),
BENCH_HISTORY_HOT_OPERATIONS (50000). Every process it starts is stopped at the end.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cpu, goals, litellm_env, processes, summary, wrk
from bench.our_stack import OurStack, subject
from bench.sides import SCENARIOS, USERS, Side, Upstream, idle_cpu, measure, our_side
from devstack import ROOT, free_port

SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
WARMUP_S = float(os.environ.get("BENCH_WARMUP_SECONDS", "5"))
HISTORY = {
    "accounts": int(os.environ.get("BENCH_HISTORY_ACCOUNTS", "10000")),
    "operations": int(os.environ.get("BENCH_HISTORY_OPERATIONS", "200000")),
    "hot_operations": int(os.environ.get("BENCH_HISTORY_HOT_OPERATIONS", "50000")),
}
ONLY = {k.strip() for k in os.environ.get("BENCH_SCENARIOS", "").split(",") if k.strip()}
SELECTED = [s for s in SCENARIOS if not ONLY or s.key in ONLY]
PAUSE_S = 2  # between runs, as compare.py: let queues drain
IDLE_S = 5  # each phase first samples every side's CPU with no load
RESULTS = ROOT / "bench" / "results"


def log(*parts: object) -> None:
    print(time.strftime("%H:%M:%S"), *parts, flush=True)


def history_stack(upstream: Upstream, hot_email: str) -> tuple[OurStack | None, dict[str, Any]]:
    """A stack whose store bench/history.py filled before its services started, or why not."""
    info: dict[str, Any] = {**HISTORY}
    if importlib.util.find_spec("bench.history") is None:
        return None, {**info, "status": "bench/history.py missing"}
    stack = OurStack(label="history", upstream_port=upstream.port, cached=False)
    info["hot_user"] = subject(stack.tokens([hot_email])[0])
    try:
        stack.start_mongo()
        build_store = importlib.import_module("bench.history").build_store
        log(f"history: building {HISTORY['operations']} operations over {HISTORY['accounts']} accounts")
        started = time.monotonic()
        asyncio.run(
            build_store(mongodb_url=stack.mongodb_url, database=stack.database, hot_user=info["hot_user"], **HISTORY)
        )
        info["build_s"] = round(time.monotonic() - started, 1)
        info["store_after_build"] = stack.store_contents()
        log(f"history: built in {info['build_s']} s; starting the services on it")
        stack.start_services()
    except Exception as exc:
        traceback.print_exc()
        stack.stop()
        return None, {**info, "status": f"error: {type(exc).__name__}: {exc}"}
    return stack, {**info, "status": "run"}


def run_phase(*, cached: bool, venv: Path, upstream: Upstream, work: Path) -> dict[str, Any]:
    """One phase's rounds (`rows`), the history stack's status, and each side's CPU with no load."""
    mode = "cached" if cached else "uncached"
    scenarios = [s for s in SELECTED if s.cached == cached]
    rows: list[dict[str, Any]] = []
    idle: dict[str, dict[str, float]] = {}
    if not scenarios:
        return {"rows": rows, "history": {}, "idle": idle}
    history: dict[str, Any] = {}
    stacks: list[OurStack] = []
    litellm = None
    try:
        log(f"{mode}: starting LiteLLM and our stack")
        port = free_port()
        litellm = litellm_env.start_proxy(venv, port=port, upstream_port=upstream.port, cached=cached, work=work)
        other = wrk.write_script(work / f"litellm-{mode}.lua", [litellm_env.MASTER_KEY], cached=cached)
        proxy = litellm
        cache_part = {"redis_cache": cpu.by_name("redis-server")} if cached else {}  # LiteLLM's cache
        sides = [
            Side(
                "direct",
                f"http://127.0.0.1:{upstream.port}/v1/chat/completions",
                {(USERS, False): other},
                upstream.pids,
            ),
            Side(
                "litellm",
                f"http://127.0.0.1:{port}/v1/chat/completions",
                {(USERS, False): other, (1, False): other, (USERS, True): other},
                lambda: {"litellm": cpu.tree(proxy.pid), **cache_part},
            ),
        ]
        hot_email = "bench-hot@example.com"
        ours = OurStack(label=mode, upstream_port=upstream.port, cached=cached)
        stacks.append(ours)
        ours.start()
        sides.append(our_side("ours", ours, work, cached=cached, hot_email=hot_email))
        if any("ours_history" in s.sides for s in scenarios):
            stack, history = history_stack(upstream, hot_email)
            if stack is not None:
                stacks.append(stack)
                sides.append(our_side("ours_history", stack, work, cached=False, hot_email=hot_email))
        by_name = {s.name: s for s in sides}
        for side in sides:  # warm up every side (accounts made, caches filled)
            for script in set(side.scripts.values()):
                wrk.run(side.url, script, conns=8, seconds=WARMUP_S)
        idle = idle_cpu(sides, seconds=IDLE_S)
        log(f"{mode}: CPU with no load, % of one core: {idle}")
        for rnd in range(ROUNDS):
            for scenario in scenarios:
                for name in (n for n in scenario.sides if n in by_name):
                    row = {**measure(by_name[name], scenario, upstream, seconds=SECONDS), "round": rnd}
                    rows.append(row)
                    log(
                        f"{scenario.key:17s} {name:12s} round {rnd}: {row.get('rps', 0):8.1f} req/s  "
                        f"p50 {row.get('p50_ms', 0):7.1f} ms  p99 {row.get('p99_ms', 0):7.1f} ms  "
                        f"cpu {row['cpu_ms_per_req']} ms/req  upstream calls {row['upstream_calls']}  "
                        f"errors {row['errors']}"
                    )
                    time.sleep(PAUSE_S)
    finally:
        for stack in stacks:
            stack.stop()
        if litellm is not None:
            processes.stop(litellm)
    return {"rows": rows, "history": history, "idle": idle}


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: stop what we started
    started = time.monotonic()
    wrk.ensure_installed()
    venv = litellm_env.ensure_venv(litellm_env.cache_dir())
    work = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    upstream = None
    try:
        upstream = Upstream(venv, work)
        phases = {cached: run_phase(cached=cached, venv=venv, upstream=upstream, work=work) for cached in (False, True)}
        rows = phases[False]["rows"] + phases[True]["rows"]
        history = phases[False]["history"] or {"status": "scenarios not selected (BENCH_SCENARIOS)"}
    finally:
        if upstream is not None:
            processes.stop(upstream.proc)
        shutil.rmtree(work, ignore_errors=True)
    medians = summary.summarize(rows, SCENARIOS)
    skipped = {} if history.get("status") == "run" else {"4": history.get("status", "no history stack")}
    checks = goals.evaluate(medians, skipped=skipped)
    settings = {
        "seconds_per_run": SECONDS,
        "rounds": ROUNDS,
        "warmup_seconds": WARMUP_S,
        "users": USERS,
        "litellm": litellm_env.installed_version(venv),
        "store": "MONGODB_URL" if os.environ.get("MONGODB_URL") else "mongoeco, SQLite engine (persist_mongo=True)",
        "cores": os.cpu_count(),
        "scenarios": [s.key for s in SELECTED],
    }
    tables = (
        f"{ROUNDS} rounds of {SECONDS:g} s per side and scenario, medians; LiteLLM {settings['litellm']}, "
        f"our store {settings['store']}, {settings['cores']} cores\n\n"
        + summary.figures_table(medians)
        + "\n\n"
        + goals.goals_table(checks)
    )
    result = {
        "benchmark": "chat side by side: wrk -> fake OpenAI upstream | LiteLLM proxy | our stack",
        "settings": settings,
        "history": history,
        "idle_cpu_percent": {"uncached": phases[False]["idle"], "cached": phases[True]["idle"]},
        "medians": medians,
        "ratios": summary.ratios(medians),
        "goals": checks,
        "rounds_detail": rows,
        "duration_s": round(time.monotonic() - started),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "compare.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "compare.md").write_text(tables + "\n")
    print("\n" + tables)


if __name__ == "__main__":
    main()
