"""The ledger's MongoDB restarting under a settlement nobody waits for (chat's `wait=False`):
the credits service, through its real wiring, keeps the command and applies it once the
store is back, instead of answering it 503 into the void and letting the hold expire."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from common.bus import Bus, RpcClient, Topology
from common.contracts import Actor, Balance, Caller
from common.credits import CreditsClient
from common.errors import ServiceUnavailable
from common.settings import CommonSettings
from devstack import Process, free_port, mongoeco_argv, mongoeco_uri
from tests.support.chat_system import credits_settings
from tests.support.services import in_process
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

ACTOR = Actor(id="user-outage", email="outage@example.com", role="user")


class Store:
    """A mongoeco of this test's own, on a SQLite file, so it can be stopped and started again
    on the same port with the same data (as the chaos soak restarts the stack's)."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.argv = mongoeco_argv(port=self.port, sqlite=tmp_path / "mongo.sqlite")
        self.log = tmp_path / "mongo.log"
        self.process: Process | None = None
        self.url = ""

    def start(self) -> None:
        self.process = Process("mongo", self.argv, env=dict(os.environ), log_file=self.log, echo=False)
        self.url = mongoeco_uri(self.process.start())

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path)
    s.start()
    yield s
    s.stop()


@pytest.fixture
async def rpc(amqp_url: str, namespace: str) -> AsyncIterator[RpcClient]:
    bus = Bus(url=amqp_url, topology=Topology(namespace), service="chat")
    await bus.connect()
    client = RpcClient(bus, process="chat")
    await client.start()
    yield client
    await bus.close()


async def handled_commits() -> dict[str, float]:
    """CommitReservation messages the credits consumer has handled, by outcome (its metric)."""
    return {
        outcome: REGISTRY.get_sample_value(
            "aisaas_messages_total", {"service": "credits", "message": "CommitReservation", "outcome": outcome}
        )
        or 0.0
        for outcome in ("ok", "error", "retried")
    }


async def test_a_commit_sent_without_waiting_while_the_store_is_down_is_applied_once_it_is_back(
    store: Store, rpc: RpcClient, amqp_url: str, redis_url: str, namespace: str
) -> None:
    base = CommonSettings(
        amqp_url=amqp_url,
        redis_url=redis_url,
        mongodb_url=store.url,
        mongodb_database=f"t_{namespace}",
        bus_namespace=namespace,
    )
    credits = CreditsClient(rpc)
    caller = Caller(request_id="req-outage", actor=ACTOR, deadline=datetime.now(UTC) + timedelta(seconds=60))
    # The first retry comes soon after the store is back, and the hold outlives every attempt.
    settings = credits_settings(base, bus_retry_backoff_s=0.2, bus_retry_backoff_max_s=1.0, reservation_ttl_s=120)
    async with in_process("credits", settings):
        reservation = await credits.reserve(caller, reservation_id=uuid.uuid4(), amount=7, purpose="chat")
        before = await handled_commits()

        store.stop()
        await credits.commit(caller, reservation, amount=5, wait=False)  # confirmed by the broker
        # The consumer has met the store down (and, before the fix, answered the commit 503 and acked it).
        await wait_until(handled_commits, lambda n: n != before, within=30)

        store.start()  # same port, same file
        balance = await wait_until(
            lambda: _balance(credits, caller), lambda b: b is not None and b.reserved == 0, within=30
        )
        assert balance is not None and (balance.spent, balance.reserved) == (5, 0)
        journal = await credits.journal(caller, limit=50, before=None)
        ends = [(e.kind, e.amount) for e in journal.entries if e.reservation_id == reservation.reservation_id]
        assert sorted(ends) == [("commit", 5), ("reserve", 7)]  # committed with the amount, once; not expired


async def _balance(credits: CreditsClient, caller: Caller) -> Balance | None:
    try:
        return await credits.balance(caller)
    except ServiceUnavailable:  # the store is still coming back
        return None
