"""The stack the simulator-backed benchmarks run (chat_bench, embeddings_bench): every service as
its own process, as `make run` starts them, with its providers on the simulator, and budgets and
credits no benchmark reaches; and the users that drive it."""

from __future__ import annotations

import json
from pathlib import Path

from devstack import Stack, free_port
from gateway.auth.dev_issuer import DevIssuer
from tests.simulator.server import RunningSimulator

UNLIMITED = json.dumps({group: {"user": "10000000/minute"} for group in ("chat", "images")})


def simulated_stack(simulator: RunningSimulator, *, namespace: str, data_dir: Path, concurrency: int) -> Stack:
    return Stack(
        namespace=namespace,
        gateway_port=free_port(),
        data_dir=data_dir,
        extra_env={
            **simulator.base_urls.env(),
            "SIGNUP_CREDITS": str(10**9),
            "BUS_PREFETCH": str(concurrency * 4),
            "MONGODB_DATABASE": namespace,
            "RATE_LIMIT_IP": "10000000/minute",
            "RATE_LIMITS": UNLIMITED,
        },
    )


def bench_users(data_dir: Path, count: int) -> list[dict[str, str]]:
    """Authorization headers of `count` users, signed by the stack's development issuer."""
    issuer = DevIssuer(issuer="urn:aisaas:dev-issuer", key_file=data_dir / "dev-issuer-key.pem")
    return [
        {"Authorization": "Bearer " + issuer.token(email=f"bench{i}@example.com", role="user", ttl_s=7200)}
        for i in range(count)
    ]
