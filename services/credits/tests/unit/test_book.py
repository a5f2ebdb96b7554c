"""The in-memory book: replaying what a book wrote gives the same book, and it keeps the
reference model's rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import Conflict, InsufficientCredits, ValidationFailed
from credits.book import Book
from credits.entries import decode, encode
from credits.ledger import Figures

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = timedelta(minutes=15)
users = st.sampled_from(["u1", "u2", "u3"])
rids = st.sampled_from([f"r{i}" for i in range(6)])
operation = st.one_of(
    st.tuples(st.just("grant"), users, st.sampled_from(["g1", "g2", "signup:u1"]), st.integers(1, 30)),
    st.tuples(st.just("reserve"), users, rids, st.integers(1, 20)),
    st.tuples(st.just("commit"), users, rids, st.integers(0, 20)),
    st.tuples(st.just("release"), users, rids, st.just(0)),
    st.tuples(st.just("balance"), users, st.just(""), st.just(0)),
    st.tuples(st.just("tick"), st.just(""), st.just(""), st.integers(0, 30)),
)


def state(book: Book) -> dict[str, object]:
    return {
        u: (a.figures, sorted((h.id, h.amount, h.expires_at) for h in a.holds.values()), sorted(a.grants), a.last_seq)
        for u, a in book.accounts.items()
        if a.version
    }


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(operation, max_size=40), page_size=st.integers(1, 5))
def test_replaying_the_written_pages_rebuilds_the_same_book(
    ops: list[tuple[str, str, str, int]], page_size: int
) -> None:
    live = Book(signup_credits=10, window=WINDOW)
    pages: list[tuple[int, str]] = []
    now, seq = T0, 1
    live.begin(seq)
    for i, (kind, user, key, n) in enumerate(ops):
        try:
            if kind == "grant":
                live.grant(user_id=user, email=f"{user}@x.io", key=key, amount=n, reason="admin", now=now)
            elif kind == "reserve":
                live.reserve(
                    user_id=user,
                    email="",
                    reservation_id=key,
                    amount=n,
                    purpose="chat",
                    ttl=timedelta(seconds=10),
                    now=now,
                )
            elif kind in ("commit", "release"):
                hold = live.accounts.get(user) and live.accounts[user].holds.get(key)
                held = hold.amount if hold else 1
                live.resolve(
                    user_id=user,
                    reservation_id=key,
                    held=held,
                    used=min(n, held) if kind == "commit" else 0,
                    kind=kind,
                    now=now,
                )
            elif kind == "balance":
                live.balance(user_id=user, email="", now=now)
            else:
                now += timedelta(seconds=n)
                live.expire_due(now)
        except (Conflict, InsufficientCredits, ValidationFailed):
            pass
        for account in live.accounts.values():
            assert account.figures.consistent
            assert account.figures.reserved == sum(h.amount for h in account.holds.values())
        if (i + 1) % page_size == 0 or i == len(ops) - 1:
            if live.produced:
                pages.append((seq, encode(live.produced)))
                seq += 1
            live.begin(seq)
    replayed = Book(signup_credits=10, window=WINDOW)
    for page_seq, text in pages:
        for entry in decode(text):
            replayed.apply(entry, seq=page_seq)
    assert state(replayed) == state(live)
    assert replayed.settled == live.settled


def test_an_account_opens_with_its_signup_grant_and_that_key_is_spent() -> None:
    book = Book(signup_credits=10, window=WINDOW)
    book.begin(1)
    balance, applied = book.grant(user_id="u", email="u@x.io", key="signup:u", amount=99, reason="signup", now=T0)
    assert not applied and balance.available == 10
    assert [(e.id, e.email) for e in book.produced] == [("grant:signup:u", "u@x.io")]


def test_without_signup_credits_a_reserve_records_nothing() -> None:
    book = Book(signup_credits=0, window=WINDOW)
    book.begin(1)
    with pytest.raises(InsufficientCredits):
        book.reserve(user_id="u", email="", reservation_id="r", amount=1, purpose="chat", ttl=timedelta(1), now=T0)
    assert book.produced == [] and not book.dirty


def test_settled_reservations_are_forgotten_after_the_window() -> None:
    book = Book(signup_credits=10, window=WINDOW)
    book.begin(1)
    book.reserve(user_id="u", email="", reservation_id="r", amount=2, purpose="chat", ttl=timedelta(60), now=T0)
    book.resolve(user_id="u", reservation_id="r", held=2, used=1, kind="commit", now=T0)
    book.forget_before(T0 + WINDOW - timedelta(seconds=1))
    assert "r" in book.settled
    book.forget_before(T0 + WINDOW + timedelta(seconds=1))
    assert "r" not in book.settled
    with pytest.raises(Conflict) as caught:
        book.resolve(user_id="u", reservation_id="r", held=2, used=1, kind="commit", now=T0)
    assert caught.value.extra["status_now"] == "unknown"
    assert book.accounts["u"].figures == Figures(available=9, spent=1, granted=10)
