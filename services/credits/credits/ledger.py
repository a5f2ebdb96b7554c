"""The ledger's rules, free of IO: how each operation moves an account's four figures,
which repeats are replays and which are refused.

The MongoDB repository turns these deltas into single-document conditional updates; the
in-memory `Account` applies them directly and is what the property tests exercise.

Figures: available + reserved + spent = granted, and none is ever negative.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from common.contracts import EntryKind, ReservationStatus
from common.errors import Conflict, InsufficientCredits, ValidationFailed

# Account fields as stored (the seed's `credits` collection: `credits` is what is available,
# `amount` what was ever granted).
FIELDS = {"available": "credits", "reserved": "reserved", "spent": "spent", "granted": "amount"}
TERMINAL: dict[EntryKind, ReservationStatus] = {"commit": "committed", "release": "released", "expire": "expired"}


@dataclass(frozen=True, slots=True)
class Figures:
    available: int = 0
    reserved: int = 0
    spent: int = 0
    granted: int = 0

    def __add__(self, other: Figures) -> Figures:
        return Figures(*(a + b for a, b in zip(self.astuple(), other.astuple(), strict=True)))

    def astuple(self) -> tuple[int, int, int, int]:
        return (self.available, self.reserved, self.spent, self.granted)

    @property
    def consistent(self) -> bool:
        return min(self.astuple()) >= 0 and self.available + self.reserved + self.spent == self.granted

    def as_inc(self) -> dict[str, int]:
        """The delta as a MongoDB $inc on the stored field names (zeros left out)."""
        return {FIELDS[name]: value for name, value in zip(FIELDS, self.astuple(), strict=True) if value}


def grant_delta(amount: int) -> Figures:
    return Figures(available=amount, granted=amount)


def reserve_delta(amount: int) -> Figures:
    return Figures(available=-amount, reserved=amount)


def resolve_delta(*, held: int, used: int) -> Figures:
    """Commit `used` of a `held` reservation (used=0 for release and expiry)."""
    return Figures(available=held - used, reserved=-held, spent=used)


def entry_id(kind: EntryKind, key: str) -> str:
    return f"{kind}:{key}"


def check_resolution(*, held: int, used: int) -> None:
    if not 0 <= used <= held:
        raise ValidationFailed(
            f"commit amount {used} must be between 0 and the reserved {held}", reserved=held, amount=used
        )


def replay_or_refuse(*, first: EntryKind, first_used: int, requested: EntryKind, requested_used: int) -> None:
    """A repeat of the same resolution is a replay; any other resolution of a resolved reservation is refused."""
    if first == requested and first_used == requested_used:
        return
    raise Conflict(
        f"reservation already {TERMINAL[first]}; it cannot be {TERMINAL[requested]}", status_now=TERMINAL[first]
    )


@dataclass(frozen=True, slots=True)
class Hold:
    id: str
    amount: int
    expires_at: datetime


@dataclass
class Account:
    """One account, in memory: the reference semantics of the ledger."""

    figures: Figures = field(default_factory=Figures)
    holds: dict[str, Hold] = field(default_factory=dict)
    resolved: dict[str, tuple[EntryKind, int]] = field(default_factory=dict)
    grants: set[str] = field(default_factory=set)

    def grant(self, key: str, amount: int) -> bool:
        """Apply a grant once per key; True if it moved credits."""
        if key in self.grants:
            return False
        self.grants.add(key)
        self.figures = self.figures + grant_delta(amount)
        return True

    def reserve(self, reservation_id: str, amount: int, expires_at: datetime) -> Hold:
        if reservation_id in self.holds:
            return self.holds[reservation_id]
        if reservation_id in self.resolved:
            raise Conflict("reservation already resolved")
        if self.figures.available < amount:
            raise InsufficientCredits(
                f"{amount} credits needed, {self.figures.available} available",
                balance=self.figures.available,
                price=amount,
            )
        self.holds[reservation_id] = hold = Hold(reservation_id, amount, expires_at)
        self.figures = self.figures + reserve_delta(amount)
        return hold

    def resolve(self, reservation_id: str, kind: EntryKind, used: int = 0) -> None:
        if reservation_id in self.resolved:
            first, first_used = self.resolved[reservation_id]
            replay_or_refuse(first=first, first_used=first_used, requested=kind, requested_used=used)
            return
        hold = self.holds.get(reservation_id)
        if hold is None:
            raise Conflict("no such reservation")
        check_resolution(held=hold.amount, used=used)
        del self.holds[reservation_id]
        self.resolved[reservation_id] = (kind, used)
        self.figures = self.figures + resolve_delta(held=hold.amount, used=used)

    def expire(self, now: datetime) -> list[str]:
        due = [h.id for h in self.holds.values() if h.expires_at <= now]
        for reservation_id in due:
            self.resolve(reservation_id, "expire")
        return due
