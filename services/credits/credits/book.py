"""One partition's ledger in memory, and the rules of each operation on it. No IO.

The partition (credits.partition) owns a `Book`: it loads it from the store, runs a batch of
operations on it, writes the entries they produced as one page of the log, and answers them
only once that page is durable. Every change goes through `apply`, the same function that
replays the log when a partition is loaded, so a live change and a replayed one cannot
differ. If a page cannot be written the book is thrown away and loaded again.

Idempotency: a pending reservation is found in its account's holds; a settled one in
`settled` for `window` after it settled (longer than any message's deadline plus the
reservation TTL, so every repeat the platform can send finds it; a load reads them back from
the checkpoints' digests, `credits.settlements`); a grant's key in its account's `grants`,
for ever.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from common.contracts import Balance, EntryKind, ReservationStatus
from common.errors import Conflict, InsufficientCredits, ValidationFailed
from credits.entries import Entry, entry_id
from credits.ledger import (
    TERMINAL,
    Figures,
    check_resolution,
    grant_delta,
    replay_or_refuse,
    reserve_delta,
    resolve_delta,
)


@dataclass(slots=True)
class Hold:
    id: str
    amount: int
    expires_at: datetime
    purpose: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Settled:
    """How a reservation ended, kept for the replay window."""

    user_id: str
    kind: EntryKind
    held: int
    used: int
    expires_at: datetime
    at: datetime


@dataclass(slots=True)
class AccountState:
    user_id: str
    email: str
    created_at: datetime
    updated_at: datetime
    figures: Figures = field(default_factory=Figures)
    holds: dict[str, Hold] = field(default_factory=dict)
    grants: set[str] = field(default_factory=set)
    last_seq: int | None = None  # page of the newest entry: where the history chain starts
    version: int = 0
    seq: int = 0  # the page its stored document reflects
    stored: bool = False  # whether the account has a document in the store

    def balance(self) -> Balance:
        f = self.figures
        return Balance(
            user_id=self.user_id, available=f.available, reserved=f.reserved, spent=f.spent, granted=f.granted
        )


@dataclass(frozen=True, slots=True)
class HoldView:
    """A reservation as a reserve (or its repeat) reports it."""

    amount: int
    status: ReservationStatus
    expires_at: datetime
    balance: Balance
    applied: bool


@dataclass(frozen=True, slots=True)
class Resolution:
    kind: EntryKind
    used: int
    held: int
    balance: Balance
    applied: bool


class Book:
    def __init__(self, *, signup_credits: int, window: timedelta) -> None:
        self.signup_credits = signup_credits
        self.window = window
        self.accounts: dict[str, AccountState] = {}
        self.absent: set[str] = set()  # looked up in the store and not there
        self.settled: dict[str, Settled] = {}
        self._settled_order: deque[tuple[datetime, str]] = deque()
        # Settled in pages after the last checkpoint: what the next one writes as a digest.
        self.settling: list[tuple[str, Settled]] = []
        self._expiries: list[tuple[datetime, str, str]] = []
        self.dirty: set[str] = set()
        self.seq = 0  # the page being filled by `apply`
        self.produced: list[Entry] = []

    # -- the only way state changes ---------------------------------------------------------

    def apply(self, entry: Entry, *, seq: int) -> None:
        """Apply one entry written (or about to be written) in page `seq`."""
        account = self.accounts.get(entry.user_id)
        if account is None:  # an account comes into being with its first entry
            account = AccountState(
                user_id=entry.user_id, email=entry.email or "", created_at=entry.at, updated_at=entry.at
            )
            account.grants.add(f"signup:{entry.user_id}")
            self.accounts[entry.user_id] = account
            self.absent.discard(entry.user_id)
        account.figures = account.figures + entry.delta
        if entry.kind == "grant":
            account.grants.add(entry.key)
        elif entry.kind == "reserve":
            assert entry.expires_at is not None and entry.reservation_id is not None
            account.holds[entry.reservation_id] = Hold(
                entry.reservation_id, entry.amount, entry.expires_at, entry.purpose or "", entry.at
            )
            heapq.heappush(self._expiries, (entry.expires_at, entry.reservation_id, entry.user_id))
        else:
            assert entry.reservation_id is not None
            hold = account.holds.pop(entry.reservation_id)
            self._settle(
                entry.reservation_id,
                Settled(entry.user_id, entry.kind, hold.amount, entry.amount, hold.expires_at, entry.at),
                new=True,
            )
        account.last_seq = seq
        account.version += 1
        account.updated_at = entry.at
        self.dirty.add(entry.user_id)

    def remember(self, entry: Entry, *, new: bool = False) -> None:
        """Note a settlement read back from the log (its account's checkpoint already holds its
        effect); `new`: from a page after the partition's checkpoint, so not in a digest yet."""
        if entry.kind in TERMINAL and entry.reservation_id is not None and entry.expires_at is not None:
            held = -entry.delta.reserved
            self._settle(
                entry.reservation_id,
                Settled(entry.user_id, entry.kind, held, entry.amount, entry.expires_at, entry.at),
                new=new,
            )

    def recall(self, reservation_id: str, settled: Settled) -> None:
        """Note a settlement read back from a checkpoint's digest."""
        self._settle(reservation_id, settled, new=False)

    def _settle(self, reservation_id: str, settled: Settled, *, new: bool) -> None:
        self.settled[reservation_id] = settled
        self._settled_order.append((settled.at, reservation_id))
        if new:
            self.settling.append((reservation_id, settled))

    def forget_before(self, now: datetime) -> None:
        cutoff = now - self.window
        while self._settled_order and self._settled_order[0][0] < cutoff:
            _, reservation_id = self._settled_order.popleft()
            found = self.settled.get(reservation_id)
            if found is not None and found.at < cutoff:
                del self.settled[reservation_id]

    def add_account(self, account: AccountState) -> None:
        """An account read from the store (its checkpoint)."""
        self.accounts[account.user_id] = account
        self.absent.discard(account.user_id)
        for hold in account.holds.values():
            heapq.heappush(self._expiries, (hold.expires_at, hold.id, account.user_id))

    # -- a batch ----------------------------------------------------------------------------

    def begin(self, seq: int) -> None:
        self.seq = seq
        self.produced = []

    def _emit(self, entry: Entry) -> None:
        account = self.accounts.get(entry.user_id)
        prev = account.last_seq if account is not None else None
        entry = replace(entry, prev=prev)
        self.apply(entry, seq=self.seq)
        self.produced.append(entry)

    def _account(self, user_id: str, email: str, now: datetime) -> AccountState:
        """The account, opened (with its signup grant) if it does not exist yet."""
        account = self.accounts.get(user_id)
        if account is not None:
            return account
        if self.signup_credits:
            key = f"signup:{user_id}"
            amount = self.signup_credits
            self._emit(
                Entry(
                    entry_id("grant", key),
                    user_id,
                    "grant",
                    amount,
                    grant_delta(amount),
                    now,
                    reason="signup",
                    email=email,
                )
            )
            return self.accounts[user_id]
        # Without signup credits an account has nothing to record until its first grant.
        account = AccountState(user_id=user_id, email=email, created_at=now, updated_at=now)
        account.grants.add(f"signup:{user_id}")
        self.accounts[user_id] = account
        return account

    # -- operations -------------------------------------------------------------------------

    def reserve(
        self, *, user_id: str, email: str, reservation_id: str, amount: int, purpose: str, ttl: timedelta, now: datetime
    ) -> HoldView:
        account = self._account(user_id, email, now)
        hold = account.holds.get(reservation_id)
        if hold is not None:
            return HoldView(hold.amount, "pending", hold.expires_at, account.balance(), applied=False)
        settled = self.settled.get(reservation_id)
        if settled is not None and settled.user_id == user_id:
            status = TERMINAL[settled.kind]
            return HoldView(settled.held, status, settled.expires_at, account.balance(), applied=False)
        if account.figures.available < amount:
            raise InsufficientCredits(
                f"{amount} credits needed, {account.figures.available} available",
                balance=account.figures.available,
                price=amount,
            )
        expires_at = now + ttl
        self._emit(
            Entry(
                entry_id("reserve", reservation_id),
                user_id,
                "reserve",
                amount,
                reserve_delta(amount),
                now,
                reservation_id=reservation_id,
                expires_at=expires_at,
                purpose=purpose,
                email=_first(account, email),
            )
        )
        return HoldView(amount, "pending", expires_at, account.balance(), applied=True)

    def resolve(
        self, *, user_id: str, reservation_id: str, held: int, used: int, kind: EntryKind, now: datetime
    ) -> Resolution:
        """Commit `used` (or release/expire with used=0) of a pending reservation holding `held`.
        A repeat of the same resolution replays the first; any other one is refused."""
        check_resolution(held=held, used=used)
        account = self.accounts.get(user_id)
        hold = account.holds.get(reservation_id) if account is not None else None
        if account is None or hold is None:
            settled = self.settled.get(reservation_id)
            if settled is None or settled.user_id != user_id or account is None:
                raise Conflict("no such reservation", status_now="unknown")
            replay_or_refuse(first=settled.kind, first_used=settled.used, requested=kind, requested_used=used)
            return Resolution(settled.kind, settled.used, settled.held, account.balance(), applied=False)
        if hold.amount != held:
            raise ValidationFailed(f"reservation holds {hold.amount}, not {held}", reserved=hold.amount)
        if kind == "expire" and hold.expires_at > now:
            raise Conflict("reservation has not expired")
        self._emit(
            Entry(
                entry_id(kind, reservation_id),
                user_id,
                kind,
                used,
                resolve_delta(held=held, used=used),
                now,
                reservation_id=reservation_id,
                expires_at=hold.expires_at,
            )
        )
        return Resolution(kind, used, held, account.balance(), applied=True)

    def grant(
        self, *, user_id: str, email: str, key: str, amount: int, reason: str, now: datetime
    ) -> tuple[Balance, bool]:
        """Add credits once per key; a repeated key (even the signup one) replays."""
        account = self._account(user_id, email, now)
        if key in account.grants:
            return account.balance(), False
        self._emit(
            Entry(
                entry_id("grant", key),
                user_id,
                "grant",
                amount,
                grant_delta(amount),
                now,
                reason=reason,
                email=_first(account, email),
            )
        )
        return account.balance(), True

    def balance(self, *, user_id: str, email: str, now: datetime) -> Balance:
        return self._account(user_id, email, now).balance()

    def history_head(self, user_id: str) -> int | None:
        account = self.accounts.get(user_id)
        return account.last_seq if account is not None else None

    def due(self, now: datetime) -> bool:
        """Whether some hold may have expired by `now`."""
        return bool(self._expiries) and self._expiries[0][0] <= now

    def expire_due(self, now: datetime, *, limit: int = 1000) -> list[tuple[str, int]]:
        """Expire holds whose time is up; returns (reservation id, amount) of each."""
        done: list[tuple[str, int]] = []
        while self._expiries and self._expiries[0][0] <= now and len(done) < limit:
            _, reservation_id, user_id = heapq.heappop(self._expiries)
            account = self.accounts.get(user_id)
            hold = account.holds.get(reservation_id) if account is not None else None
            if hold is None or hold.expires_at > now:
                continue  # settled meanwhile (or a stale heap item)
            self.resolve(
                user_id=user_id, reservation_id=reservation_id, held=hold.amount, used=0, kind="expire", now=now
            )
            done.append((reservation_id, hold.amount))
        return done

    def holders(self) -> list[str]:
        return sorted(u for u, a in self.accounts.items() if a.holds)


def _first(account: AccountState, email: str) -> str | None:
    """The email rides on an account's first entry only: replaying it opens the account."""
    return None if account.version else email
