"""A ledger partition on the real MongoDB-protocol server: operations, idempotency, expiry,
group commit, checkpoints, restarts, crashes and two replicas writing one partition."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo.asynchronous.database import AsyncDatabase

from common.errors import Conflict, InsufficientCredits, ServiceUnavailable, ValidationFailed
from common.pages import READ_AHEAD
from credits.history import history
from credits.ledger import Account, Figures
from credits.reconcile import reconcile, stored_figures
from tests.support.finds import watched
from tests.support.ledger import TTL, Clock, Replica
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

USER = "user_1"


def figures(replica: Replica, user: str = USER) -> Figures:
    return replica.book.accounts[user].figures


async def stored(db: AsyncDatabase[dict[str, Any]], user: str = USER) -> Figures:
    doc = await db["credits"].find_one({"_id": user})
    assert doc is not None
    return stored_figures(doc)


async def journal(replica: Replica, user: str = USER) -> list[str]:
    head = replica.book.history_head(user)
    entries, _ = await history(replica.log, partition=0, user_id=user, head=head, limit=200, before=None)
    return [e.id for e in entries]


async def pages(db: AsyncDatabase[dict[str, Any]]) -> int:
    return await db["credit_log"].count_documents({})


async def restarted(
    replica: Replica, db: AsyncDatabase[dict[str, Any]], clock: Clock, replicas: list[Replica]
) -> Replica:
    await replica.stop()
    again = Replica(db, clock)
    replicas.append(again)
    return again


async def test_first_sight_grants_signup_credits_exactly_once(ledger: Replica) -> None:
    await asyncio.gather(*(ledger.balance(USER) for _ in range(20)))
    assert figures(ledger) == Figures(available=10, granted=10)
    assert await journal(ledger) == [f"grant:signup:{USER}"]

    async def announced() -> list[str]:
        return [e.id for page in ledger.announced for e in page.entries]

    assert await wait_until(announced, bool, within=5) == [f"grant:signup:{USER}"]


async def test_reserve_commit_moves_only_what_was_used(ledger: Replica, db: AsyncDatabase[dict[str, Any]]) -> None:
    r = await ledger.reserve(USER, 4)
    assert figures(ledger) == Figures(available=6, reserved=4, granted=10)
    resolution = await ledger.resolve(USER, r, held=4, used=3)
    assert (resolution.kind, resolution.used, resolution.applied) == ("commit", 3, True)
    assert resolution.balance.available == 7 and resolution.balance.spent == 3
    assert await journal(ledger) == [f"commit:{r}", f"reserve:{r}", f"grant:signup:{USER}"]
    await ledger.checkpoint()
    assert await stored(db) == Figures(available=7, spent=3, granted=10)
    assert (await reconcile(ledger.store, ledger.log, limit=100)).drift == []


async def test_repeats_return_the_first_result_and_other_resolutions_are_refused(
    ledger: Replica, db: AsyncDatabase[dict[str, Any]], clock: Clock, replicas: list[Replica]
) -> None:
    r = await ledger.reserve(USER, 5)
    await ledger.reserve(USER, 5, r)  # replay: no second hold
    assert figures(ledger) == Figures(available=5, reserved=5, granted=10)
    await ledger.resolve(USER, r, held=5, used=2)
    await assert_replays(ledger, r)  # remembered in memory
    await assert_replays(await restarted(ledger, db, clock, replicas), r)  # read back from the log


async def assert_replays(replica: Replica, r: str) -> None:
    replay = await replica.resolve(USER, r, held=5, used=2)
    assert (replay.kind, replay.used, replay.applied) == ("commit", 2, False)
    for again_kind, again_used in (("release", 0), ("commit", 5)):
        with pytest.raises(Conflict):
            await replica.resolve(USER, r, held=5, used=again_used, kind=again_kind)
    held = await replica.run(
        lambda b, now: b.reserve(user_id=USER, email="", reservation_id=r, amount=5, purpose="chat", ttl=TTL, now=now),
        USER,
    )
    assert (held.status, held.applied) == ("committed", False)
    assert figures(replica) == Figures(available=8, spent=2, granted=10)


async def test_commit_after_release_and_bad_amounts_are_refused(ledger: Replica) -> None:
    r = await ledger.reserve(USER, 3)
    with pytest.raises(ValidationFailed):
        await ledger.resolve(USER, r, held=3, used=4)
    with pytest.raises(ValidationFailed):
        await ledger.resolve(USER, r, held=2, used=1)
    await ledger.resolve(USER, r, held=3, kind="release")
    with pytest.raises(Conflict, match="already released"):
        await ledger.resolve(USER, r, held=3, used=3)
    with pytest.raises(Conflict, match="no such reservation"):
        await ledger.resolve(USER, str(uuid.uuid4()), held=3, used=3)
    assert figures(ledger) == Figures(available=10, granted=10)


async def test_insufficient_credits_changes_nothing(ledger: Replica) -> None:
    await ledger.reserve(USER, 8)
    with pytest.raises(InsufficientCredits) as caught:
        await ledger.reserve(USER, 3)
    assert caught.value.extra == {"balance": 2, "price": 3}
    assert figures(ledger) == Figures(available=2, reserved=8, granted=10)


async def test_concurrent_reserves_never_overdraw_and_share_pages(
    ledger: Replica, db: AsyncDatabase[dict[str, Any]]
) -> None:
    await ledger.grant(USER, "top-up", 40)
    before = await pages(db)
    results = await asyncio.gather(*(ledger.reserve(USER, 1) for _ in range(200)), return_exceptions=True)
    assert sum(isinstance(r, str) for r in results) == 50
    assert all(isinstance(r, (str, InsufficientCredits)) for r in results)
    assert figures(ledger) == Figures(available=0, reserved=50, granted=50)
    assert await pages(db) - before < 50  # group commit: many operations per page written


async def test_grant_is_idempotent_by_key_for_ever(
    ledger: Replica, db: AsyncDatabase[dict[str, Any]], clock: Clock, replicas: list[Replica]
) -> None:
    for _ in range(3):
        await ledger.grant(USER, "purchase-42", 5)
    replica = await restarted(ledger, db, clock, replicas)
    clock.advance(10 * 24 * 3600)  # far past any replay window: the key lives in the account
    _, applied = await replica.grant(USER, "purchase-42", 5)
    assert not applied
    assert figures(replica) == Figures(available=15, granted=15)


async def test_reserve_is_idempotent_after_a_restart(
    ledger: Replica, db: AsyncDatabase[dict[str, Any]], clock: Clock, replicas: list[Replica]
) -> None:
    first_at = clock.now
    r = await ledger.reserve(USER, 4)
    await ledger.resolve(USER, r, held=4, used=1)
    await ledger.kill()  # no last checkpoint: everything is replayed from the log
    replica = Replica(db, clock)
    replicas.append(replica)
    clock.advance(5)
    replay = await replica.run(
        lambda b, now: b.reserve(user_id=USER, email="", reservation_id=r, amount=4, purpose="chat", ttl=TTL, now=now),
        USER,
    )
    assert (replay.status, replay.amount, replay.applied) == ("committed", 4, False)
    assert replay.expires_at == first_at + TTL  # the first hold's, not the repeat's
    assert figures(replica) == Figures(available=9, spent=1, granted=10)


async def test_an_abandoned_reservation_expires_once(ledger: Replica, clock: Clock) -> None:
    r = await ledger.reserve(USER, 6, ttl=timedelta(seconds=5))
    clock.advance(4)
    assert await ledger.expire() == []
    with pytest.raises(Conflict, match="not expired"):
        await ledger.resolve(USER, r, held=6, kind="expire")
    clock.advance(2)
    assert await ledger.expire() == [(r, 6)]
    assert await ledger.expire() == []
    assert figures(ledger) == Figures(available=10, granted=10)
    with pytest.raises(Conflict, match="already expired"):
        await ledger.resolve(USER, r, held=6, used=6)


async def test_the_sweeper_expires_holds_it_loaded_from_a_checkpoint(
    ledger: Replica, db: AsyncDatabase[dict[str, Any]], clock: Clock, replicas: list[Replica]
) -> None:
    await ledger.reserve(USER, 6, ttl=timedelta(seconds=5))
    await ledger.stop()
    clock.advance(6)
    replica = Replica(db, clock, sweep_interval_s=0.05)  # its own timer, no message for the account
    replicas.append(replica)
    await replica.run(lambda b, now: None)  # what a LedgerTick does: load the partition

    async def holds() -> int:
        return len(replica.book.accounts[USER].holds)

    await wait_until(holds, lambda n: n == 0, within=5, interval=0.02)
    assert figures(replica) == Figures(available=10, granted=10)
    assert (await journal(replica))[0].startswith("expire:")


async def test_history_pages_newest_first_and_refuses_a_made_up_cursor(ledger: Replica, clock: Clock) -> None:
    await ledger.balance(USER)
    for i in range(5):
        clock.advance(1)
        await ledger.grant(USER, f"g{i}", 1)
        await ledger.grant("someone-else", f"x{i}", 1)
    head = ledger.book.history_head(USER)
    first, cursor = await history(ledger.log, partition=0, user_id=USER, head=head, limit=4, before=None)
    second, end = await history(ledger.log, partition=0, user_id=USER, head=head, limit=4, before=cursor)
    ids = [e.id for e in first + second]
    assert ids == ["grant:g4", "grant:g3", "grant:g2", "grant:g1", "grant:g0", f"grant:signup:{USER}"]
    assert end is None
    for bad in ("nonsense", "1.", "x.1", "9" * 60 + ".1"):
        with pytest.raises(ValidationFailed):
            await history(ledger.log, partition=0, user_id=USER, head=head, limit=4, before=bad)


async def test_reconciliation_reports_tampering(ledger: Replica, db: AsyncDatabase[dict[str, Any]]) -> None:
    await ledger.reserve(USER, 1)
    await ledger.checkpoint()
    assert (await reconcile(ledger.store, ledger.log, limit=10)).drift == []
    await db["credits"].update_one({"_id": USER}, {"$inc": {"credits": 5}})
    report = await reconcile(ledger.store, ledger.log, limit=10)
    assert [d.user_id for d in report.drift] == [USER]
    assert report.drift[0].stored.available == report.drift[0].computed.available + 5


async def test_a_crash_after_a_checkpoint_replays_only_what_followed(
    ledger: Replica, db: AsyncDatabase[dict[str, Any]], clock: Clock, replicas: list[Replica]
) -> None:
    r1 = await ledger.reserve(USER, 2)
    await ledger.checkpoint()
    marker = await db["credit_partitions"].find_one({"_id": "p000"})
    assert marker is not None and marker["checkpoint"] == ledger.partition.head
    r2 = await ledger.reserve(USER, 3)
    await ledger.resolve(USER, r1, held=2, used=2)
    expected = figures(ledger)
    await ledger.kill()
    assert await stored(db) == Figures(available=8, reserved=2, granted=10)  # the checkpoint, behind the log
    replica = Replica(db, clock)
    replicas.append(replica)
    await replica.balance(USER)
    assert figures(replica) == expected == Figures(available=5, reserved=3, spent=2, granted=10)
    assert set(replica.book.accounts[USER].holds) == {r2}
    await replica.checkpoint()
    assert (await reconcile(replica.store, replica.log, limit=10)).drift == []


async def test_a_stale_replica_is_fenced_and_never_spends_twice(
    ledger: Replica, db: AsyncDatabase[dict[str, Any]], clock: Clock, replicas: list[Replica]
) -> None:
    await ledger.balance(USER)  # 10 credits, loaded by the first owner
    newer = Replica(db, clock)  # a second replica handed the partition, while the first still runs
    replicas.append(newer)
    await newer.reserve(USER, 7)
    # The first replica's book does not know that hold; its write of the same page is refused,
    # it reloads from the log and decides again: 3 credits left, so 7 more cannot be held.
    with pytest.raises(InsufficientCredits):
        await ledger.reserve(USER, 7)
    assert figures(ledger) == Figures(available=3, reserved=7, granted=10)
    await ledger.reserve(USER, 3)
    with pytest.raises(InsufficientCredits):
        await newer.reserve(USER, 1)  # and the other way round
    assert figures(newer) == Figures(available=0, reserved=10, granted=10)


async def test_concurrent_owners_under_load_agree_with_the_log(
    ledger: Replica, db: AsyncDatabase[dict[str, Any]], clock: Clock, replicas: list[Replica]
) -> None:
    other = Replica(db, clock)
    replicas.append(other)
    await ledger.grant(USER, "load", 40)

    async def retried(call: Any) -> Any:
        for _ in range(20):  # what a caller does with a 503: try again
            try:
                return await call()
            except ServiceUnavailable:
                await asyncio.sleep(0.01)
        raise AssertionError("the ledger stayed unavailable")

    async def spend(replica: Replica) -> str | None:
        try:
            r: str = await retried(lambda: replica.reserve(USER, 1))
        except InsufficientCredits:
            return None
        await retried(lambda: replica.resolve(USER, r, held=1, used=1))
        return r

    done = await asyncio.gather(*(spend(ledger if i % 2 else other) for i in range(60)))
    assert sum(r is not None for r in done) == 50
    await other.checkpoint()
    assert (await reconcile(other.store, other.log, limit=10)).drift == []
    # A replica's book is as fresh as its last write (a read is not fenced, and either replica
    # may have written last): the truth is what the partition's next owner loads from the store.
    owner = Replica(db, clock)
    replicas.append(owner)
    await owner.balance(USER)
    assert figures(owner) == Figures(available=0, spent=50, granted=50)
    await owner.checkpoint()
    assert await stored(db) == Figures(available=0, spent=50, granted=50)


operation = st.one_of(
    st.tuples(st.just("grant"), st.sampled_from(["g1", "g2"]), st.integers(1, 20)),
    st.tuples(st.just("reserve"), st.sampled_from(["a", "b", "c", "d"]), st.integers(1, 15)),
    st.tuples(st.just("commit"), st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 15)),
    st.tuples(st.just("release"), st.sampled_from(["a", "b", "c", "d"]), st.just(0)),
    st.tuples(st.just("expire"), st.just(""), st.integers(0, 40)),
    st.tuples(st.sampled_from(["checkpoint", "restart", "crash"]), st.just(""), st.just(0)),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, max_size=25))
async def test_the_ledger_agrees_with_the_reference_model(
    db: AsyncDatabase[dict[str, Any]], clock: Clock, replicas: list[Replica], ops: list[tuple[str, str, int]]
) -> None:
    """The same random sequences run on the reference model and on partitions that checkpoint,
    restart and crash between operations."""
    user = f"prop_{uuid.uuid4().hex[:8]}"
    model = Account()
    model.grant(f"signup:{user}", 10)
    keys = {k: str(uuid.uuid5(uuid.NAMESPACE_URL, user + k)) for k in "abcd"}
    replica = Replica(db, clock)
    replicas.append(replica)
    await replica.balance(user)
    for kind, key, n in ops:
        if kind in ("checkpoint", "restart", "crash"):
            if kind == "checkpoint":
                await replica.checkpoint()
            else:
                await (replica.stop() if kind == "restart" else replica.kill())
                replica = Replica(db, clock)
                replicas.append(replica)
            await replica.balance(user)
            assert figures(replica, user) == model.figures
            continue
        expected: type[Exception] | None = None
        held = used = 0
        try:
            if kind == "grant":
                model.grant(key, n)
            elif kind == "reserve":
                model.reserve(keys[key], n, clock.now + timedelta(seconds=10))
            elif kind in ("commit", "release"):
                hold = model.holds.get(keys[key])
                first = model.resolved.get(keys[key])
                held = hold.amount if hold else (n or 1)
                used = min(n, held) if kind == "commit" else 0
                if hold is None and first is None:
                    continue  # a resolution needs a held amount; an unknown id is covered elsewhere
                model.resolve(keys[key], kind, used)  # type: ignore[arg-type]
            else:
                clock.advance(n)
                model.expire(clock.now)
        except (Conflict, InsufficientCredits, ValidationFailed) as exc:
            expected = type(exc)
        try:
            if kind == "grant":
                await replica.run(
                    lambda b, now, key=key, n=n: b.grant(
                        user_id=user, email="", key=key, amount=n, reason="admin", now=now
                    ),
                    user,
                )
            elif kind == "reserve":
                await replica.reserve(user, n, keys[key], ttl=timedelta(seconds=10))
            elif kind in ("commit", "release"):
                await replica.resolve(user, keys[key], held=held, used=used, kind=kind)
            else:
                await replica.expire()
        except (Conflict, InsufficientCredits, ValidationFailed) as exc:
            if kind == "reserve" and expected is Conflict:
                continue  # a resolved id: the model refuses, the ledger replays the first result
            assert type(exc) is expected, (kind, key, n, exc)
        else:
            assert expected is None or (kind == "reserve" and expected is Conflict), (kind, key, n, expected)
        assert figures(replica, user) == model.figures
    assert figures(replica, user).consistent
    await replica.checkpoint()
    assert (await reconcile(replica.store, replica.log, limit=1000)).drift == []


async def test_an_account_the_earlier_ledger_wrote_is_read_and_checkpointed(
    ledger: Replica, db: AsyncDatabase[dict[str, Any]], clock: Clock
) -> None:
    legacy = {
        "_id": USER,
        "userId": USER,
        "userEmail": "u@example.com",
        "credits": 7,
        "reserved": 0,
        "spent": 3,
        "amount": 10,
        "version": 5,
        "holds": [],
        "outbox": [],
        "seen": [f"grant:signup:{USER}", "grant:purchase-1", "reserve:x"],
        "createdAt": clock.now,
        "updatedAt": clock.now,
    }
    await db["credits"].insert_one(legacy)
    assert not (await ledger.grant(USER, "purchase-1", 5))[1]  # its grant keys came along
    assert not (await ledger.grant(USER, f"signup:{USER}", 5))[1]
    await ledger.reserve(USER, 2)
    await ledger.checkpoint()
    assert await stored(db) == Figures(available=5, reserved=2, spent=3, granted=10)


async def test_settlements_linger_for_company_but_a_read_takes_them_along(
    db: AsyncDatabase[dict[str, Any]], clock: Clock, replicas: list[Replica]
) -> None:
    replica = Replica(db, clock, linger_s=30.0)
    replicas.append(replica)
    holds = [await replica.reserve(USER, 1) for _ in range(3)]
    before = await pages(db)
    settled = [
        asyncio.create_task(
            replica.partition.submit(
                lambda b, now, r=r: b.resolve(user_id=USER, reservation_id=r, held=1, used=1, kind="commit", now=now),
                users=(USER,),
                urgent=False,
            )
        )
        for r in holds
    ]

    async def queued() -> int:
        return len(replica.partition._queue)

    await wait_until(queued, lambda n: n == 3, within=5, interval=0.001)  # lingering, not written
    assert await pages(db) == before
    balance = await replica.balance(USER)  # urgent: the lingering commits go with it, before it
    assert (balance.reserved, balance.spent) == (0, 3)
    assert all(t.done() for t in settled)
    assert await pages(db) - before == 1


async def test_a_stale_replica_cannot_overwrite_a_newer_checkpoint(
    ledger: Replica, db: AsyncDatabase[dict[str, Any]], clock: Clock, replicas: list[Replica]
) -> None:
    await ledger.reserve(USER, 2)
    await ledger.checkpoint()
    newer = Replica(db, clock)  # handed the partition while the first one still runs
    replicas.append(newer)
    await newer.reserve(USER, 5)
    await newer.checkpoint()
    ledger.book.dirty.add(USER)  # the stale replica has something of its own to write
    await ledger.checkpoint()
    assert ledger.partition.book is None  # refused: it knows it is stale and will reload
    assert await stored(db) == Figures(available=3, reserved=7, granted=10)  # the newer state stands
    marker = await db["credit_partitions"].find_one({"_id": "p000"})
    assert marker is not None and marker["checkpoint"] == newer.partition.head


def announced_head(replica: Replica) -> Callable[[], Awaitable[int]]:
    async def head() -> int:
        return replica.announced[-1].seq if replica.announced else 0

    return head


async def settle_many(ledger: Replica, count: int, *, checkpoint_every: int) -> list[str]:
    """`count` reservations held and committed one at a time (two pages each), checkpointed every
    `checkpoint_every`; the last few settle after the last checkpoint."""
    await ledger.grant(USER, "top-up", 1000)
    settled = []
    for i in range(count):
        r = await ledger.reserve(USER, 2)
        await ledger.resolve(USER, r, held=2, used=1)
        settled.append(r)
        if (i + 1) % checkpoint_every == 0:
            head = ledger.partition.head  # announced first, so a load need not read it again for that
            await wait_until(announced_head(ledger), lambda seq, head=head: seq == head, within=5)
            await ledger.checkpoint()
    return settled


async def assert_remembered(replica: Replica, settled: list[str]) -> None:
    for r in settled:
        replay = await replica.resolve(USER, r, held=2, used=1)
        assert (replay.kind, replay.used, replay.applied) == ("commit", 1, False)
        held = await replica.run(
            lambda b, now, r=r: b.reserve(
                user_id=USER, email="", reservation_id=r, amount=2, purpose="chat", ttl=TTL, now=now
            ),
            USER,
        )
        assert (held.status, held.applied) == ("committed", False)
    assert figures(replica) == Figures(available=1010 - len(settled), spent=len(settled), granted=1010)


async def test_a_load_reads_the_settlements_of_its_window_from_digests_not_from_every_page(
    ledger: Replica, db: AsyncDatabase[dict[str, Any]], mongodb_url: str, clock: Clock, replicas: list[Replica]
) -> None:
    settled = await settle_many(ledger, 40, checkpoint_every=12)  # 3 checkpoints, 4 settled after the last
    written = await pages(db)
    marker = await db["credit_partitions"].find_one({"_id": "p000"})
    assert marker is not None and marker["digest"] is not None
    await ledger.kill()
    async with watched(mongodb_url) as (client, finds):
        replica = Replica(client[db.name], clock)
        replicas.append(replica)
        await assert_remembered(replica, settled)
        # The pages after the checkpoint (the last 4 pairs), and the misses of their read-ahead.
        assert finds.by_collection["credit_log"] <= 8 + READ_AHEAD < written
        assert finds.by_collection["credit_settlements"] == 3  # one digest per checkpoint
        await replica.checkpoint()  # the 4 settled after the last checkpoint go into the next digest
        await replica.kill()
        again = Replica(db, clock)
        replicas.append(again)
        await assert_remembered(again, settled)


@pytest.mark.parametrize("gone", ["the marker names no digest", "its digests expired"])
async def test_a_window_no_digest_covers_is_read_from_the_pages(
    gone: str, ledger: Replica, db: AsyncDatabase[dict[str, Any]], clock: Clock, replicas: list[Replica]
) -> None:
    settled = await settle_many(ledger, 10, checkpoint_every=5)
    await ledger.kill()
    if gone == "the marker names no digest":  # a ledger written before digests existed
        await db["credit_partitions"].update_one({"_id": "p000"}, {"$unset": {"digest": ""}})
    await db["credit_settlements"].delete_many({})
    replica = Replica(db, clock)
    replicas.append(replica)
    await assert_remembered(replica, settled)
