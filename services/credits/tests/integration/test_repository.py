"""The ledger in MongoDB: conditional single-document updates, idempotency, expiry, the
journal and reconciliation, against the real MongoDB-protocol server."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.contracts import JournalEntry
from common.errors import Conflict, InsufficientCredits, ValidationFailed
from credits.journal import JournalFlusher
from credits.ledger import Account, Figures
from credits.reconcile import reconcile, stored_figures
from credits.repository import AccountRepository
from credits.sweeper import Sweeper

pytestmark = pytest.mark.integration

USER = "user_1"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TTL = timedelta(seconds=60)


def rid() -> str:
    return str(uuid.uuid4())


async def figures(repo: AccountRepository, user: str = USER) -> Figures:
    doc = await repo.account(user)
    assert doc is not None
    return stored_figures(doc)


async def reserve(
    repo: AccountRepository,
    amount: int,
    reservation_id: str | None = None,
    *,
    now: datetime = NOW,
    ttl: timedelta = TTL,
) -> str:
    reservation_id = reservation_id or rid()
    await repo.reserve(
        user_id=USER,
        email="u@example.com",
        reservation_id=reservation_id,
        amount=amount,
        purpose="chat",
        ttl=ttl,
        now=now,
    )
    return reservation_id


class Announced:
    def __init__(self) -> None:
        self.entries: list[JournalEntry] = []

    async def __call__(self, entry: JournalEntry, message_id: uuid.UUID) -> None:
        self.entries.append(entry)


async def flush_all(repo: AccountRepository, announced: Announced | None = None) -> None:
    flusher = JournalFlusher(repo, announce=announced or Announced(), interval_s=0.1)
    while await flusher.flush_once():
        pass


async def test_first_sight_grants_signup_credits_exactly_once(repo: AccountRepository) -> None:
    await asyncio.gather(*(repo.ensure_account(user_id=USER, email="u@example.com", now=NOW) for _ in range(20)))
    announced = Announced()
    await flush_all(repo, announced)
    assert await figures(repo) == Figures(available=10, granted=10)
    assert [e.id for e in announced.entries] == [f"grant:signup:{USER}"]
    assert await repo.users.count_documents({"_id": USER, "userEmail": "u@example.com", "role": "user"}) == 1


async def test_reserve_commit_moves_only_what_was_used(repo: AccountRepository) -> None:
    r = await reserve(repo, 4)
    assert await figures(repo) == Figures(available=6, reserved=4, granted=10)
    resolution = await repo.resolve(user_id=USER, reservation_id=r, held=4, used=3, kind="commit", now=NOW)
    assert (resolution.kind, resolution.used, resolution.applied) == ("commit", 3, True)
    assert stored_figures(resolution.account) == Figures(available=7, spent=3, granted=10)
    await flush_all(repo)
    kinds = [d["kind"] async for d in repo.journal.find({"userId": USER}).sort("at", 1)]
    assert sorted(kinds) == ["commit", "grant", "reserve"]
    assert (await reconcile(repo, limit=100)).drift == []


async def test_repeats_return_the_first_result_and_other_resolutions_are_refused(repo: AccountRepository) -> None:
    r = await reserve(repo, 5)
    await reserve(repo, 5, r)  # replay: no second hold
    assert await figures(repo) == Figures(available=5, reserved=5, granted=10)
    await repo.resolve(user_id=USER, reservation_id=r, held=5, used=2, kind="commit", now=NOW)
    await flush_all(repo)  # the first result must be found in the journal too, not only in the outbox
    replay = await repo.resolve(user_id=USER, reservation_id=r, held=5, used=2, kind="commit", now=NOW)
    assert (replay.kind, replay.used, replay.applied) == ("commit", 2, False)
    for again_kind, again_used in (("release", 0), ("commit", 5)):
        with pytest.raises(Conflict):
            await repo.resolve(user_id=USER, reservation_id=r, held=5, used=again_used, kind=again_kind, now=NOW)  # type: ignore[arg-type]
    replay = await repo.reserve(user_id=USER, email="", reservation_id=r, amount=5, purpose="chat", ttl=TTL, now=NOW)
    assert (replay.hold["status"], replay.applied) == ("committed", False)
    assert await figures(repo) == Figures(available=8, spent=2, granted=10)


async def test_commit_after_release_and_bad_amounts_are_refused(repo: AccountRepository) -> None:
    r = await reserve(repo, 3)
    with pytest.raises(ValidationFailed):
        await repo.resolve(user_id=USER, reservation_id=r, held=3, used=4, kind="commit", now=NOW)
    with pytest.raises(ValidationFailed):
        await repo.resolve(user_id=USER, reservation_id=r, held=2, used=1, kind="commit", now=NOW)
    await repo.resolve(user_id=USER, reservation_id=r, held=3, used=0, kind="release", now=NOW)
    with pytest.raises(Conflict, match="already released"):
        await repo.resolve(user_id=USER, reservation_id=r, held=3, used=3, kind="commit", now=NOW)
    with pytest.raises(Conflict, match="no such reservation"):
        await repo.resolve(user_id=USER, reservation_id=rid(), held=3, used=3, kind="commit", now=NOW)
    assert await figures(repo) == Figures(available=10, granted=10)


async def test_insufficient_credits_changes_nothing(repo: AccountRepository) -> None:
    await reserve(repo, 8)
    with pytest.raises(InsufficientCredits) as caught:
        await reserve(repo, 3)
    assert caught.value.extra == {"balance": 2, "price": 3}
    assert await figures(repo) == Figures(available=2, reserved=8, granted=10)


async def test_concurrent_reserves_never_overdraw(repo: AccountRepository) -> None:
    await repo.grant(user_id=USER, email="", key="top-up", amount=40, reason="purchase", now=NOW)
    results = await asyncio.gather(*(reserve(repo, 1) for _ in range(200)), return_exceptions=True)
    assert sum(isinstance(r, str) for r in results) == 50
    assert all(isinstance(r, (str, InsufficientCredits)) for r in results)
    assert await figures(repo) == Figures(available=0, reserved=50, granted=50)


async def test_grant_is_idempotent_by_key_even_after_the_seen_window(repo: AccountRepository) -> None:
    for _ in range(3):
        await repo.grant(user_id=USER, email="", key="purchase-42", amount=5, reason="purchase", now=NOW)
    await flush_all(repo)
    await repo.accounts.update_one({"_id": USER}, {"$set": {"seen": []}})  # as if 1000 newer operations had passed
    await repo.grant(user_id=USER, email="", key="purchase-42", amount=5, reason="purchase", now=NOW)
    assert await figures(repo) == Figures(available=15, granted=15)


async def test_grant_is_idempotent_after_the_seen_window_before_its_entry_is_flushed(repo: AccountRepository) -> None:
    await repo.grant(user_id=USER, email="", key="purchase-43", amount=5, reason="purchase", now=NOW)
    await repo.accounts.update_one({"_id": USER}, {"$set": {"seen": []}})  # as if 1000 newer operations had passed
    await repo.grant(user_id=USER, email="", key="purchase-43", amount=5, reason="purchase", now=NOW)
    assert await figures(repo) == Figures(available=15, granted=15)
    await flush_all(repo)
    assert (await reconcile(repo, limit=100)).drift == []


@pytest.mark.parametrize("flushed", [True, False], ids=["journal", "outbox"])
async def test_reserve_is_idempotent_even_after_the_seen_window(repo: AccountRepository, flushed: bool) -> None:
    r = await reserve(repo, 4)
    await repo.resolve(user_id=USER, reservation_id=r, held=4, used=1, kind="commit", now=NOW)
    if flushed:
        await flush_all(repo)
    await repo.accounts.update_one({"_id": USER}, {"$set": {"seen": []}})  # as if 1000 newer operations had passed
    later = NOW + timedelta(seconds=5)
    replay = await repo.reserve(user_id=USER, email="", reservation_id=r, amount=4, purpose="chat", ttl=TTL, now=later)
    assert (replay.hold["status"], replay.hold["amount"], replay.applied) == ("committed", 4, False)
    assert replay.hold["expiresAt"] == NOW + TTL  # the first hold's, not the reserve's time
    assert await figures(repo) == Figures(available=9, spent=1, granted=10)
    await flush_all(repo)
    assert (await reconcile(repo, limit=100)).drift == []


async def test_abandoned_reservation_expires_once_with_two_sweepers(repo: AccountRepository) -> None:
    r = await reserve(repo, 6, ttl=timedelta(seconds=5))
    changes: list[object] = []

    async def on_change(doc: object) -> None:
        changes.append(doc)

    sweepers = [Sweeper(repo, interval_s=1, on_change=on_change) for _ in range(2)]
    assert await asyncio.gather(*(s.sweep_once(NOW + timedelta(seconds=4)) for s in sweepers)) == [0, 0]
    assert sum(await asyncio.gather(*(s.sweep_once(NOW + timedelta(seconds=6)) for s in sweepers))) == 1
    assert len(changes) == 1
    assert await figures(repo) == Figures(available=10, granted=10)
    with pytest.raises(Conflict, match="already expired"):
        await repo.resolve(
            user_id=USER, reservation_id=r, held=6, used=6, kind="commit", now=NOW + timedelta(seconds=7)
        )


async def test_expiry_does_not_touch_a_live_reservation(repo: AccountRepository) -> None:
    r = await reserve(repo, 2, ttl=timedelta(seconds=30))
    with pytest.raises(Conflict, match="not expired"):
        await repo.resolve(
            user_id=USER, reservation_id=r, held=2, used=0, kind="expire", now=NOW + timedelta(seconds=1)
        )


async def test_history_pages_newest_first(repo: AccountRepository) -> None:
    await repo.ensure_account(user_id=USER, email="", now=NOW)
    for i in range(5):
        await repo.grant(
            user_id=USER, email="", key=f"g{i}", amount=1, reason="admin", now=NOW + timedelta(seconds=i + 1)
        )
    await flush_all(repo)
    first, cursor = await repo.history(user_id=USER, limit=4, before=None)
    second, end = await repo.history(user_id=USER, limit=4, before=cursor)
    ids = [e.id for e in first + second]
    assert ids == ["grant:g4", "grant:g3", "grant:g2", "grant:g1", "grant:g0", f"grant:signup:{USER}"]
    assert end is None


async def test_reconciliation_reports_tampering(repo: AccountRepository) -> None:
    await reserve(repo, 1)
    await flush_all(repo)
    assert (await reconcile(repo, limit=10)).drift == []
    await repo.accounts.update_one({"_id": USER}, {"$inc": {"credits": 5}})
    report = await reconcile(repo, limit=10)
    assert [d.user_id for d in report.drift] == [USER]
    assert report.drift[0].stored.available == report.drift[0].computed.available + 5


operation = st.one_of(
    st.tuples(st.just("grant"), st.sampled_from(["g1", "g2"]), st.integers(1, 20)),
    st.tuples(st.just("reserve"), st.sampled_from(["a", "b", "c", "d"]), st.integers(1, 15)),
    st.tuples(st.just("commit"), st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 15)),
    st.tuples(st.just("release"), st.sampled_from(["a", "b", "c", "d"]), st.just(0)),
    st.tuples(st.just("expire"), st.just(""), st.integers(0, 40)),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, max_size=25))
async def test_mongo_ledger_agrees_with_the_reference_model(
    repo: AccountRepository, ops: list[tuple[str, str, int]]
) -> None:
    user = f"prop_{uuid.uuid4().hex[:8]}"
    model = Account()
    model.grant(f"signup:{user}", 10)
    keys = {k: str(uuid.uuid5(uuid.NAMESPACE_URL, user + k)) for k in "abcd"}
    now = NOW
    await repo.ensure_account(user_id=user, email="", now=now)
    for kind, key, n in ops:
        expected: type[Exception] | None = None
        try:
            if kind == "grant":
                model.grant(key, n)
            elif kind == "reserve":
                model.reserve(keys[key], n, now + timedelta(seconds=10))
            elif kind in ("commit", "release"):
                hold = model.holds.get(keys[key])
                first = model.resolved.get(keys[key])
                held = hold.amount if hold else (n or 1)
                used = min(n, held) if kind == "commit" else 0
                if hold is None and first is None:
                    continue  # the repository needs a held amount; an unknown id is covered elsewhere
                model.resolve(keys[key], kind, used)  # type: ignore[arg-type]
            else:
                now += timedelta(seconds=n)
                model.expire(now)
        except (Conflict, InsufficientCredits, ValidationFailed) as exc:
            expected = type(exc)
        try:
            if kind == "grant":
                await repo.grant(user_id=user, email="", key=key, amount=n, reason="admin", now=now)
            elif kind == "reserve":
                await repo.reserve(
                    user_id=user,
                    email="",
                    reservation_id=keys[key],
                    amount=n,
                    purpose="p",
                    ttl=timedelta(seconds=10),
                    now=now,
                )
            elif kind in ("commit", "release"):
                await repo.resolve(user_id=user, reservation_id=keys[key], held=held, used=used, kind=kind, now=now)  # type: ignore[arg-type]
            else:
                await Sweeper(repo, interval_s=1, on_change=_ignore).sweep_once(now)
        except (Conflict, InsufficientCredits, ValidationFailed) as exc:
            if kind == "reserve" and expected is Conflict:
                continue  # a resolved id: the model refuses, the repository replays the first result
            assert type(exc) is expected, (kind, key, n, exc)
        else:
            assert expected is None or (kind == "reserve" and expected is Conflict), (kind, key, n, expected)
        assert await figures(repo, user) == model.figures
    assert (await figures(repo, user)).consistent


async def _ignore(doc: object) -> None:
    return None
