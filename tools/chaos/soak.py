"""One soak: start the stack (two replicas of chat, credits and imagegen; the provider
simulator; Redis behind a cuttable proxy; a MongoDB-protocol server of its own), run the load
and the injector for `duration` seconds, let everything settle, read the evidence, check.

Everything is local (127.0.0.1) and removed afterwards but the results folder: the report,
and the processes' logs under `data/logs`.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from chaos import evidence as ev
from chaos.faults import (
    PROVIDER_FAULTS,
    BrokerRestart,
    Fault,
    Injection,
    Injector,
    MongoRestart,
    ProviderFault,
    RedisCut,
    SigKill,
)
from chaos.invariants import all_checks, dead_letters_explained, recovery
from chaos.load import KINDS, Load, Recorder, User
from chaos.proxy import TcpProxy
from chaos.report import build
from devstack import DEFAULT_AMQP_URL, DEFAULT_REDIS_URL, Stack, free_port
from gateway.auth.dev_issuer import DevIssuer
from tests.simulator.server import run_simulator
from tests.support.broker import delete_namespace, restart_broker

REPLICAS = ("chat-2", "credits-2", "imagegen-2")
PROCESSES = ("gateway", "chat", "credits", "imagegen", *REPLICAS)
RESERVATION_TTL_S = 20.0
SWEEP_S = 1.0
SETTLE_S = 120.0
TAIL_S = 30.0  # the load goes on after the last fault until every kind of request succeeded again


@dataclass
class Options:
    duration: float = 120.0
    users: int = 12
    workers: int = 12
    broker_faults: bool = False
    gap: tuple[float, float] = (2.0, 6.0)
    seed: int | None = None
    results: Path = field(default_factory=lambda: Path("chaos-results"))
    amqp_url: str = DEFAULT_AMQP_URL
    redis_url: str = DEFAULT_REDIS_URL


def stack_env(options: Options, redis_proxy_url: str, simulator_env: dict[str, str], images: Path) -> dict[str, str]:
    return {
        "MONGODB_DATABASE": "chaos",
        "AMQP_URL": options.amqp_url,
        "REDIS_URL": redis_proxy_url,
        **simulator_env,
        "ENVIRONMENT": "development",
        "IMAGE_DATA_DIR": str(images),
        "SIGNUP_CREDITS": "100000",
        "RATE_LIMITS": json.dumps({"chat": {"user": "100000/minute"}, "images": {"user": "100000/minute"}}),
        "RATE_LIMIT_IP": "100000/minute",
        "REQUEST_TIMEOUT_S": "10",
        "MAX_REQUEST_TIMEOUT_S": "15",
        "RESERVATION_TTL_S": str(RESERVATION_TTL_S),
        "SWEEP_INTERVAL_S": str(SWEEP_S),
        "CHAT_CACHE_HIT_PRICE": "1",  # a cached answer is charged too, so it is checked too
        "CHAT_ATTEMPT_TIMEOUT_S": "3",
        # One call per provider: each failed Gemini call sends its request on to OpenAI, so the
        # faults queued for both are used up by the load (and the heal is observable).
        "CHAT_RETRY_ATTEMPTS": "1",
        "CHAT_BREAKER_COOLDOWN_S": "5",
        "IMAGE_OUTPUT_HOSTS": "127.0.0.1",  # the simulator delivers the files, over plain http
        "IMAGE_OUTPUT_SCHEMES": "http",
        "IMAGE_HTTP_TIMEOUT_S": "3",
        "IMAGE_POLL_INITIAL_S": "0.1",
        "IMAGE_POLL_MAX_S": "0.5",
        "IMAGE_LEASE_S": "3",
        "IMAGE_SWEEP_INTERVAL_S": "1",
        "IMAGE_JOB_TIMEOUT_S": "15",
    }


def users(stack: Stack, count: int, ttl_s: int) -> tuple[list[User], dict[str, str]]:
    issuer = DevIssuer(issuer="urn:aisaas:dev-issuer", key_file=stack.data_dir / "dev-issuer-key.pem")
    out = []
    for i in range(count):
        email = f"chaos{i}@example.com"
        token = issuer.token(email=email, role="user", ttl_s=ttl_s)
        sub = jwt.decode(token, options={"verify_signature": False})["sub"]
        out.append(User(id=sub, email=email, headers={"Authorization": f"Bearer {token}"}))
    admin = {"Authorization": "Bearer " + issuer.token(email="chaos-ops@example.com", role="admin", ttl_s=ttl_s)}
    return out, admin


async def warm_up(base_url: str, people: list[User]) -> None:
    """Each user seen once (an account with its signup grant, a directory entry for grants)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        for user in people:
            response = await http.get("/v1/credits", headers=user.headers)
            response.raise_for_status()


async def settle(stack: Stack, job_ids: list[str], *, within: float) -> None:
    """Wait until every accepted image job is terminal and no credit is held (bounded)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.env["MONGODB_URL"], tz_aware=True)
    try:
        db = client[stack.env["MONGODB_DATABASE"]]
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                active = await db["image_jobs"].count_documents(
                    {"_id": {"$in": job_ids}, "status": {"$nin": ["succeeded", "failed"]}}
                )
                held = await db["credits"].count_documents({"holds.0": {"$exists": True}})
            except Exception:  # the store may still be coming back
                active = held = -1
            if active == 0 and held == 0:
                return
            await asyncio.sleep(0.5)
    finally:
        await client.close()


async def recovered(recorder: Recorder, injections: list[Injection], *, within: float) -> None:
    """Wait (bounded) until a request of every kind succeeded after the last fault healed."""
    healed = max((i.healed or i.injected for i in injections), default=0.0)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if {a.kind for a in recorder.answers if a.ok and a.started >= healed} >= set(KINDS):
            return
        await asyncio.sleep(0.2)


def heal_all(stack: Stack) -> None:
    """Anything left down (a restart that failed) is started again before the checks."""
    for name in PROCESSES:
        if not stack.processes[name].running:
            service, _, replica = name.partition("-")
            stack.start_service(service, replica=name if replica else None, timeout=90)


async def soak(options: Options) -> dict[str, Any]:
    rng = random.Random(options.seed)
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + f"-{uuid.uuid4().hex[:4]}"
    run_dir = (options.results / run_id).resolve()
    namespace = f"chaos{uuid.uuid4().hex[:8]}"
    redis = urlsplit(options.redis_url)
    proxy = await TcpProxy(upstream_host=redis.hostname or "127.0.0.1", upstream_port=redis.port or 6379).start()
    proxied = f"redis://127.0.0.1:{proxy.port}{redis.path or '/0'}"
    with run_simulator() as simulator:
        env = stack_env(options, proxied, simulator.base_urls.env(), run_dir / "images")
        stack = Stack(
            namespace=namespace,
            gateway_port=free_port(),
            data_dir=run_dir / "data",
            extra_env=env,
            mongo_port=free_port(),
            persist_mongo=True,
        )
        stack.env.pop("MONGODB_URL", None)  # its own server: the soak restarts it
        try:
            await asyncio.to_thread(stack.start)
            for replica in REPLICAS:
                await asyncio.to_thread(stack.start_service, replica.partition("-")[0], replica=replica)
            tap = ev.Tap(options.amqp_url, namespace)
            await tap.bind()
            people, admin = users(stack, options.users, ttl_s=int(options.duration) + 3600)
            await warm_up(stack.gateway_url, people)
            report = await _run(options, rng, stack, proxy, simulator.url, tap, people, admin)
            report["run"] |= {"id": run_id, "namespace": namespace, "logs": str(stack.data_dir / "logs")}
        finally:
            await asyncio.to_thread(stack.stop)
            await proxy.close()
            await _forget(options, namespace)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    report["run"]["file"] = str(run_dir / "report.json")
    return report


async def _run(
    options: Options,
    rng: random.Random,
    stack: Stack,
    proxy: TcpProxy,
    simulator_url: str,
    tap: ev.Tap,
    people: list[User],
    admin: dict[str, str],
) -> dict[str, Any]:
    faults: list[Fault] = [
        SigKill(stack, PROCESSES, rng),
        MongoRestart(stack),
        RedisCut(proxy, rng, seconds=(2.0, 6.0)),
        *(ProviderFault(kind, simulator_url) for kind in PROVIDER_FAULTS),
    ]
    if options.broker_faults:
        faults.append(BrokerRestart(restart_broker))
    recorder = Recorder()
    load = Load(
        base_url=stack.gateway_url,
        users=people,
        admin=admin,
        recorder=recorder,
        workers=options.workers,
        seed=rng.randrange(2**32),
    )
    injector = Injector(faults, rng, gap=options.gap)
    stop = asyncio.Event()
    started = time.time()
    traffic = asyncio.create_task(load.run())
    chaos = asyncio.create_task(injector.run(stop))
    await asyncio.sleep(options.duration)  # the soak's length is the point of the run
    stop.set()
    await chaos  # a fault under way finishes and heals (and the first round of faults completes)
    await recovered(recorder, injector.injections, within=TAIL_S)
    load.stop.set()
    await traffic
    ended = time.time()
    await proxy.restore()
    await asyncio.to_thread(heal_all, stack)
    answers = recorder.answers
    await settle(stack, [a.job_id for a in answers if a.job_id], within=SETTLE_S)
    evidence = ev.Evidence(message_ids=await tap.drain())
    await ev.read_store(stack.env["MONGODB_URL"], stack.env["MONGODB_DATABASE"], evidence)
    evidence.files = await ev.stored_files(simulator_url)
    evidence.dead_letters = await ev.dead_letters(options.amqp_url, stack.namespace, stack.data_dir / "logs")
    evidence.reconcile_status, evidence.reconcile = await ev.run_reconcile(stack.env)
    evidence.now = datetime.now(UTC)
    checks = all_checks(answers, evidence, grace=timedelta(seconds=SWEEP_S * 5 + 5))
    return build(
        run={
            "duration_s": options.duration,
            "loaded_s": round(ended - started, 1),
            "users": options.users,
            "workers": options.workers,
            "broker_faults": options.broker_faults,
            "seed": options.seed,
        },
        answers=answers,
        injections=injector.injections,
        checks=checks,
        dead_letters=dead_letters_explained(answers, evidence),
        recovery=recovery(answers, injector.injections),
    )


async def _forget(options: Options, namespace: str) -> None:
    await delete_namespace(options.amqp_url, namespace)
    await ev.Tap(options.amqp_url, namespace).delete()
    redis = Redis.from_url(options.redis_url)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{namespace}:*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()
