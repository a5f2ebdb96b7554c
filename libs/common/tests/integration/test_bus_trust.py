"""Bus trust against the real RabbitMQ: each service logs in as its own user with the
permissions `common.bus.definitions` derives from the catalog, the broker refuses what a user
may not publish or a user_id it did not log in as, and a consumer refuses what slips past the
exchanges (through the default exchange) on the broker-verified user_id.

The users are made for this test's namespace (`<ns>-chat`, ...) with `rabbitmqctl
import_definitions` and deleted afterwards; guest and every other user stay as they are."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import aiormq
import pytest
from broker_users import apply, delete_users, rabbitmqctl_usable

from common.bus import Bus, Consumer, Publishers, RpcClient, Topology
from common.bus.definitions import USERS, definitions
from common.contracts import Actor, Balance, Envelope, GrantCredits, ReserveCredits
from common.contracts.envelope import Contract, envelope_model_for
from common.errors import Forbidden, ServiceUnavailable
from tests.support.broker import queue_depth
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

HANDLED = {"chat": ["CompleteChat"], "imagegen": ["GetImage"], "imagegen-jobs": ["RunImageJob"]}
ADMIN = Actor(id="user_admin", email="admin@example.com", role="admin")


@dataclass
class Users:
    namespace: str
    passwords: dict[str, str]
    publishers: Publishers

    def name(self, service: str) -> str:
        return f"{self.namespace}-{service}"

    def url(self, service: str) -> str:
        return f"amqp://{self.name(service)}:{self.passwords[service]}@127.0.0.1:5672/"


@pytest.fixture
def users(namespace: str) -> Iterator[Users]:
    if not rabbitmqctl_usable():
        pytest.skip("rabbitmqctl cannot reach the local RabbitMQ node, so no broker users can be made")
    names = {s: f"{namespace}-{s}" for s in USERS}
    passwords = {s: secrets.token_hex(16) for s in USERS}
    apply(definitions(namespace=namespace, users=names, passwords=passwords))
    try:
        yield Users(namespace, passwords, Publishers({v: k for k, v in names.items()}))
    finally:
        delete_users(list(names.values()))


@dataclass
class Ledger:
    """A credits-shaped consumer logged in as the credits user, recording what it handled."""

    bus: Bus
    handled: list[Envelope[Any]] = field(default_factory=list)

    async def handle(self, envelope: Envelope[Any]) -> Balance:
        self.handled.append(envelope)
        return Balance(user_id=envelope.payload.user_id, available=0, reserved=0, spent=0, granted=0)


@pytest.fixture
async def ledger(users: Users) -> AsyncIterator[Ledger]:
    bus = Bus(url=users.url("credits"), topology=Topology(users.namespace), service="credits")
    await bus.connect()
    ledger = Ledger(bus)
    await Consumer(
        bus,
        service="credits",
        handlers={"ReserveCredits": ledger.handle, "GrantCredits": ledger.handle},
        processed=None,
        publishers=users.publishers,
        prefetch=8,
        max_attempts=2,
    ).start()
    yield ledger
    await bus.close()


@pytest.fixture
async def as_service(users: Users) -> AsyncIterator[Any]:
    opened: list[Bus] = []

    async def connect(service: str) -> RpcClient:
        bus = Bus(url=users.url(service), topology=Topology(users.namespace), service=service)
        await bus.connect()
        opened.append(bus)
        rpc = RpcClient(bus, process=service)
        await rpc.start()
        return rpc

    yield connect
    for bus in opened:
        await bus.close()


def envelope[P: Contract](payload: P, *, actor: Actor | None = None) -> Envelope[P]:
    return envelope_model_for(type(payload))(
        type=type(payload).__name__,
        request_id=f"req-{uuid.uuid4().hex[:8]}",
        actor=actor,
        deadline=datetime.now(UTC) + timedelta(seconds=10),
        payload=payload,
    )


def reserve(user_id: str = "user_a") -> ReserveCredits:
    return ReserveCredits(user_id=user_id, reservation_id=uuid.uuid4(), amount=1, purpose="chat")


def grant() -> GrantCredits:
    return GrantCredits(user_id="user_a", amount=1_000_000, idempotency_key=uuid.uuid4().hex, reason="admin")


async def test_a_service_cannot_publish_what_it_must_not(ledger: Ledger, as_service: Any, users: Users) -> None:
    chat = await as_service("chat")
    held = await chat.call(envelope(reserve()), reply_model=Balance)  # chat may hold credits ...
    assert held.user_id == "user_a"
    with pytest.raises(ServiceUnavailable):  # ... and its login may not grant them: the broker closes the channel
        await chat.call(envelope(grant(), actor=ADMIN), reply_model=Balance)

    # The same refusal, seen on the wire: ACCESS_REFUSED for the routing key.
    connection = await aio_pika.connect(users.url("chat"))
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(Topology(users.namespace).commands, ensure=False)
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused, match=r"GrantCredits\.0"):
            await exchange.publish(
                aio_pika.Message(envelope(grant()).model_dump_json().encode(), type="GrantCredits"),
                routing_key="GrantCredits.0",
            )
    assert [e.type for e in ledger.handled] == ["ReserveCredits"]

    gateway = await as_service("gateway")  # the gateway may grant, for a verified admin
    await gateway.call(envelope(grant(), actor=ADMIN), reply_model=Balance)
    assert [e.type for e in ledger.handled] == ["ReserveCredits", "GrantCredits"]
    assert ledger.handled[-1].actor == ADMIN


async def test_a_login_cannot_pass_itself_off_as_another_service(ledger: Ledger, users: Users) -> None:
    connection = await aio_pika.connect(users.url("chat"))
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(Topology(users.namespace).commands, ensure=False)
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed, match="user_id"):
            await exchange.publish(
                aio_pika.Message(b"{}", type="ReserveCredits", user_id=users.name("gateway")),
                routing_key="ReserveCredits.0",  # a key chat may publish: only the user_id is false
            )
    assert ledger.handled == []


async def test_what_slips_past_the_exchange_is_refused_by_the_consumer(ledger: Ledger, users: Users) -> None:
    # Replies go through the default exchange, which every service may write to and which routes
    # by queue name: chat can drop a grant straight into the ledger's queue. The consumer sees
    # the broker-verified user_id, answers 403 and dead-letters it, unhandled.
    t = Topology(users.namespace)
    connection = await aio_pika.connect(users.url("chat"))
    async with connection:
        channel = await connection.channel()
        inbox = await channel.declare_queue(f"{t.namespace}.replies.chat.test", exclusive=True)
        await channel.default_exchange.publish(
            aio_pika.Message(
                envelope(grant(), actor=ADMIN).model_dump_json().encode(),
                type="GrantCredits",
                user_id=users.name("chat"),
                reply_to=inbox.name,
                correlation_id="c1",
            ),
            routing_key=t.partition_queue("credits", 0),
        )
        reply = await wait_until(lambda: inbox.get(fail=False), lambda m: m is not None, within=10)
        error = json.loads(reply.body)["error"]
        assert error["code"] == Forbidden.code and "chat may not publish GrantCredits" in error["detail"]
    await wait_until(
        lambda: queue_depth(users.url("credits"), t.dead_letter_queue("credits")), lambda n: n == 1, within=10
    )
    assert ledger.handled == []


async def test_an_admin_claim_from_a_service_counts_as_a_plain_user(
    ledger: Ledger, as_service: Any, users: Users
) -> None:
    chat = await as_service("chat")
    await chat.call(envelope(reserve("user_victim"), actor=ADMIN), reply_model=Balance)
    (seen,) = ledger.handled
    assert seen.actor is not None and (seen.actor.id, seen.actor.role) == (ADMIN.id, "user")


async def test_every_service_runs_its_wiring_under_its_own_user(users: Users) -> None:
    t = Topology(users.namespace)
    buses = []
    try:
        for service, queues in {"chat": ["chat"], "imagegen": ["imagegen", "imagegen-jobs"], "gateway": []}.items():
            bus = Bus(url=users.url(service), topology=t, service=service)
            buses.append(bus)
            await bus.connect()
            await RpcClient(bus, process=service).start()
            for queue in queues:
                await Consumer(
                    bus,
                    service=queue,
                    handlers={name: _never for name in HANDLED[queue]},
                    processed=None,
                    publishers=users.publishers,
                    prefetch=1,
                    max_attempts=2,
                ).start()
        assert all(b.is_ready for b in buses)
    finally:
        await asyncio.gather(*(b.close() for b in buses))


async def _never(envelope: Envelope[Any]) -> None:
    raise AssertionError("not called")
