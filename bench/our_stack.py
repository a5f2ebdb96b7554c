"""Our side of the side-by-side benchmark: the whole system (mongoeco on its SQLite engine as
`make run` starts it, credits, chat, imagegen, gateway) through tools/devstack.py's Stack, with
the settings ../shared/bench/compare.py gives `make run`: rate-limit budgets nobody reaches,
SIGNUP_CREDITS=1000000000, the OpenAI provider pointed at the fake upstream, the prompt cache
off (uncached) or on for a day (cached). Unlike `make run` it lives in a throwaway data dir
with a namespace, database and ports of its own, so it never touches a developer's .data/,
queues or port 8000, and is deleted (data dir, queues, Redis keys) when stopped."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import jwt
from pymongo import MongoClient
from redis import Redis

from bench import cpu, processes
from devstack import DEFAULT_AMQP_URL, DEFAULT_REDIS_URL, SERVICES, Stack, free_port
from gateway.auth.dev_issuer import DevIssuer

HUGE = "1000000000/minute"
TOKEN_TTL_S = 6 * 3600
SHARED_SERVERS = {"rabbitmq": "beam.smp", "redis": "redis-server"}


def bench_env(*, upstream_port: int, cached: bool, database: str) -> dict[str, str]:
    return {
        "SIGNUP_CREDITS": "1000000000",
        "RATE_LIMIT_IP": HUGE,
        "RATE_LIMITS": json.dumps({g: {r: HUGE for r in ("user", "subscriber", "admin")} for g in ("chat", "images")}),
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{upstream_port}/v1",
        "CHAT_CACHE_TTL_S": "86400" if cached else "0",
        "MONGODB_DATABASE": database,
    }


class OurStack:
    """One bench stack. `start()` brings it all up; or `start_mongo()`, fill the store, then
    `start_services()` (the history scenario)."""

    def __init__(self, *, label: str, upstream_port: int, cached: bool) -> None:
        self.label = label
        self.namespace = f"cmp{label}{uuid.uuid4().hex[:6]}"
        self.database = self.namespace
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"bench-{label}-"))
        self.stack = Stack(
            namespace=self.namespace,
            gateway_port=free_port(),
            data_dir=self.data_dir,
            extra_env=bench_env(upstream_port=upstream_port, cached=cached, database=self.database),
            echo=False,
            persist_mongo=True,
        )

    @property
    def url(self) -> str:
        return self.stack.gateway_url + "/v1/chat/completions"

    @property
    def mongodb_url(self) -> str:
        return self.stack.env["MONGODB_URL"]

    def start_mongo(self) -> None:
        self.stack.check_infrastructure()
        self.stack.start_mongo()

    def start_services(self) -> None:
        for name in (*SERVICES, "gateway"):
            self.stack.start_service(name)

    def start(self) -> OurStack:
        self.start_mongo()
        self.start_services()
        return self

    def store_contents(self) -> dict[str, Any]:
        """Documents per collection of the stack's database and the store's file size: what a
        filled store holds, whatever the ledger's format."""
        client: MongoClient[dict[str, Any]] = MongoClient(self.mongodb_url)
        try:
            db = client[self.database]
            counts = {name: db[name].estimated_document_count() for name in sorted(db.list_collection_names())}
        finally:
            client.close()
        files = list(self.data_dir.glob("mongo.sqlite*"))
        return {"documents": counts, "store_mb": round(sum(f.stat().st_size for f in files) / 1e6, 1)}

    def tokens(self, emails: list[str]) -> list[str]:
        issuer = DevIssuer(issuer="urn:aisaas:dev-issuer", key_file=self.data_dir / "dev-issuer-key.pem")
        return [issuer.token(email=e, role="user", ttl_s=TOKEN_TTL_S) for e in emails]

    def new_thread(self, token: str) -> str:
        """A conversation thread of the token's user, through the API; its id."""
        request = urllib.request.Request(
            self.stack.gateway_url + "/v1/threads",
            data=b"{}",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(json.load(response)["thread_id"])

    def pids(self) -> dict[str, list[int]]:
        """Every process of the stack with its children, by name (mongo, credits, chat, imagegen,
        gateway), and RabbitMQ's and Redis's servers (shared with whatever else runs here)."""
        own = {name: cpu.tree(p.pid) for name, p in self.stack.processes.items() if p.pid is not None}
        return {**own, **{part: cpu.by_name(name) for part, name in SHARED_SERVERS.items()}}

    def stop(self) -> None:
        """Stop every process (then any leftover of their groups), and delete what it made."""
        try:
            self.stack.stop()
        finally:
            for proc in self.stack.processes.values():
                if proc.pid is not None:
                    processes.stop_group(proc.pid, grace_s=10)
            shutil.rmtree(self.data_dir, ignore_errors=True)
            try:
                asyncio.run(_delete_queues(self.stack.env.get("AMQP_URL", DEFAULT_AMQP_URL), self.namespace))
                _delete_keys(self.stack.env.get("REDIS_URL", DEFAULT_REDIS_URL), self.namespace)
            except Exception as exc:  # a broker blip at the end must not cost the run its figures
                print(f"could not delete namespace {self.namespace}'s queues or keys: {exc!r}", flush=True)


def subject(token: str) -> str:
    """The user id a token stands for (its `sub`)."""
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


async def _delete_queues(amqp_url: str, namespace: str) -> None:
    from tests.support.broker import delete_namespace

    await delete_namespace(amqp_url, namespace)


def _delete_keys(redis_url: str, namespace: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        batch: list[bytes] = []
        for key in redis.scan_iter(match=f"{namespace}:*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                redis.delete(*batch)
                batch.clear()
        if batch:
            redis.delete(*batch)
    finally:
        redis.close()
