"""`make run`'s supervisor (tools/devstack.py) never leaves a service behind: whatever kills
it, the services it started go with it, so no stale consumer keeps eating from the queues."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from devstack import ROOT, free_port

pytestmark = pytest.mark.e2e


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    with suppress(OSError):
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False


def wait_for(condition: Callable[[], bool], *, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {within}s")
        time.sleep(0.1)


@pytest.fixture
def supervisor(namespace: str, amqp_url: str, redis_url: str, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    env = {
        **os.environ,
        "ENVIRONMENT": "development",
        "BUS_NAMESPACE": namespace,
        "PORT": str(free_port()),
        "MONGO_PORT": str(free_port()),
        "METRICS_PORT": "0",  # never collide with a `make run` on this machine
        "DEVSTACK_DATA_DIR": str(tmp_path / "data"),
        "AMQP_URL": amqp_url,
        "REDIS_URL": redis_url,
    }
    env.pop("MONGODB_URL", None)  # the supervisor starts its own store, as `make run` does
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tools" / "devstack.py")],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        started = children_of(proc.pid) | getattr(proc, "services", set())
        proc.kill()
        proc.wait(10)
        for pid in started:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_services_die_with_their_supervisor_when_it_is_killed(supervisor: subprocess.Popen[str]) -> None:
    assert supervisor.stdout is not None
    deadline = time.monotonic() + 120
    for line in supervisor.stdout:
        if "AI SaaS is up" in line:
            break
        assert time.monotonic() < deadline, "the stack did not come up"
    else:
        raise AssertionError(f"the supervisor exited ({supervisor.wait(5)}) before the stack was up")
    services = children_of(supervisor.pid)
    supervisor.services = services  # type: ignore[attr-defined]  # the fixture stops them if this test fails
    assert len(services) == 5  # mongoeco, credits, chat, imagegen, gateway

    supervisor.kill()  # SIGKILL: no handler of its own can run
    supervisor.wait(10)

    wait_for(lambda: not any(alive(pid) for pid in services), within=30, what="every service gone")
