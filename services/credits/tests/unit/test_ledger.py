"""Property tests of the ledger's rules: any sequence of grant, reserve, commit, release and
expire keeps available + reserved + spent = granted and never goes negative."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from common.errors import Conflict, InsufficientCredits, ValidationFailed
from credits.ledger import (
    Account,
    Figures,
    check_resolution,
    grant_delta,
    replay_or_refuse,
    reserve_delta,
    resolve_delta,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ids = st.sampled_from([f"r{i}" for i in range(8)])


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.account = Account()
        self.now = T0
        self.charged: dict[str, int] = {}

    @rule(key=st.sampled_from(["signup", "p1", "p2", "p3"]), amount=st.integers(1, 50))
    def grant(self, key: str, amount: int) -> None:
        before = self.account.figures
        moved = self.account.grant(key, amount)
        assert (self.account.figures.granted - before.granted) == (amount if moved else 0)

    @rule(rid=ids, amount=st.integers(1, 30), ttl=st.integers(1, 10))
    def reserve(self, rid: str, amount: int, ttl: int) -> None:
        before = self.account.figures
        try:
            self.account.reserve(rid, amount, self.now + timedelta(seconds=ttl))
        except InsufficientCredits:
            assert before.available < amount and self.account.figures == before
        except Conflict:
            assert rid in self.account.resolved and self.account.figures == before

    @rule(rid=ids, fraction=st.floats(0, 1.2))
    def commit(self, rid: str, fraction: float) -> None:
        hold = self.account.holds.get(rid)
        used = int((hold.amount if hold else 10) * fraction)
        before = self.account.figures
        try:
            self.account.resolve(rid, "commit", used)
            if hold is not None:
                self.charged[rid] = used
        except (Conflict, ValidationFailed):
            assert self.account.figures == before

    @rule(rid=ids)
    def release(self, rid: str) -> None:
        before = self.account.figures
        try:
            self.account.resolve(rid, "release")
        except Conflict:
            assert self.account.figures == before

    @rule(seconds=st.integers(0, 12))
    def expire(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)
        for rid in self.account.expire(self.now):
            assert self.account.resolved[rid] == ("expire", 0)

    @invariant()
    def conservation_and_no_negatives(self) -> None:
        assert self.account.figures.consistent, self.account.figures

    @invariant()
    def reserved_equals_open_holds(self) -> None:
        assert self.account.figures.reserved == sum(h.amount for h in self.account.holds.values())

    @invariant()
    def spent_equals_what_was_charged_once(self) -> None:
        assert self.account.figures.spent == sum(self.charged.values())

    @invariant()
    def each_reservation_has_at_most_one_terminal_state(self) -> None:
        assert not set(self.account.holds) & set(self.account.resolved)


TestLedger = LedgerMachine.TestCase
TestLedger.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)


@given(held=st.integers(1, 1000), data=st.data())
def test_every_delta_conserves(held: int, data: st.DataObject) -> None:
    used = data.draw(st.integers(0, held))
    start = Figures(available=held, granted=held)
    for delta in (grant_delta(held), reserve_delta(held)):
        assert (start + delta).consistent
    assert (start + reserve_delta(held) + resolve_delta(held=held, used=used)).consistent


def test_commit_over_the_reserved_amount_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        check_resolution(held=5, used=6)


def test_same_resolution_replays_and_another_is_refused() -> None:
    replay_or_refuse(first="commit", first_used=3, requested="commit", requested_used=3)
    for requested, used in (("release", 0), ("commit", 2), ("expire", 0)):
        with pytest.raises(Conflict):
            replay_or_refuse(first="commit", first_used=3, requested=requested, requested_used=used)  # type: ignore[arg-type]


def test_delta_maps_to_the_seed_field_names() -> None:
    assert grant_delta(5).as_inc() == {"credits": 5, "amount": 5}
    assert resolve_delta(held=5, used=2).as_inc() == {"credits": 3, "reserved": -5, "spent": 2}
