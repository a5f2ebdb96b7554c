"""A local three-node Redis Cluster from Debian's redis-server, for the tests that must also
hold on a cluster (every script and multi-key command naming keys of one hash slot).

Three primaries, no replicas, on free ports (each node also needs its port + 10000 for the
cluster bus), no persistence, in a temporary directory; started once per test session by the
`redis_cluster_url` fixture and stopped after it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from redis.asyncio import Redis

# Runs a test on the single Redis server and on the Redis Cluster (see the `redis_server` fixture).
ON_BOTH_REDIS = pytest.mark.parametrize("redis_server", ["plain", "cluster"], indirect=True)

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
NODES = 3
BUS_OFFSET = 10000  # Redis Cluster's node-to-node bus listens on port + 10000


def _free_cluster_ports(count: int) -> list[int]:
    """Ports free now whose cluster bus port is free too (both bound until all are chosen)."""
    with ExitStack() as held:
        ports: list[int] = []
        while len(ports) < count:
            s = held.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
            if port + BUS_OFFSET > 65535:
                continue
            bus = held.enter_context(socket.socket())
            try:
                bus.bind(("127.0.0.1", port + BUS_OFFSET))
            except OSError:
                continue
            ports.append(port)
        return ports


def _cli(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [REDIS_CLI, "-h", "127.0.0.1", "-p", str(port), *args], capture_output=True, text=True, timeout=30
    )


def _wait_for(what: str, check: object, *, within: float) -> None:
    deadline = time.monotonic() + within
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"Redis Cluster: {what} not reached within {within}s")
        time.sleep(0.05)


@contextmanager
def redis_cluster(directory: Path, *, within: float = 30.0) -> Iterator[list[int]]:
    """Start the nodes, join them into one cluster covering every slot, and yield their ports
    once every node says `cluster_state:ok`; stop them all afterwards."""
    ports = _free_cluster_ports(NODES)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            node_dir = directory / str(port)
            node_dir.mkdir(parents=True, exist_ok=True)
            argv = [
                REDIS_SERVER,
                "--bind", "127.0.0.1",
                "--port", str(port),
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(node_dir / "nodes.conf"),
                "--cluster-node-timeout", "5000",
                "--dir", str(node_dir),
                "--save", "",
                "--appendonly", "no",
                "--logfile", str(node_dir / "redis.log"),
            ]  # fmt: skip
            procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for port in ports:
            _wait_for(f"node {port} answering", lambda p=port: _cli(p, "ping").stdout.strip() == "PONG", within=within)
        nodes = [f"127.0.0.1:{p}" for p in ports]
        created = _cli(ports[0], "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes")
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout}{created.stderr}")
        for port in ports:
            _wait_for(
                f"cluster_state:ok on {port}",
                lambda p=port: "cluster_state:ok" in _cli(p, "cluster", "info").stdout,
                within=within,
            )
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def server_slots(cluster_url: str, keys: list[str]) -> list[int]:
    """The hash slot of each key, as the cluster itself computes it (CLUSTER KEYSLOT)."""
    client = Redis.from_url(cluster_url)
    try:
        return [int(await client.execute_command("CLUSTER", "KEYSLOT", key)) for key in keys]
    finally:
        await client.aclose()
