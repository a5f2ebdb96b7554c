"""Credits messages: two-phase reservations (reserve → commit | release | expire), grants,
balances, the journal and the CreditsChanged event.

Every command is idempotent by its id (reservation_id, idempotency_key): repeating it
returns the first result; resolving a reservation a second way is refused.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import AwareDatetime, Field

from common.contracts.envelope import Contract

ReservationStatus = Literal["pending", "committed", "released", "expired"]
GrantReason = Literal["signup", "purchase", "admin", "refund"]
EntryKind = Literal["grant", "reserve", "commit", "release", "expire"]
UserId = Field(min_length=1, max_length=128, description="The account's user id (identity-provider `sub`).")


class Balance(Contract):
    """An account's figures; available + reserved + spent = granted, always."""

    user_id: str
    available: int = Field(ge=0, description="Credits that can be reserved now.")
    reserved: int = Field(ge=0, description="Credits held by pending reservations.")
    spent: int = Field(ge=0, description="Credits committed by finished work.")
    granted: int = Field(ge=0, description="All credits ever granted.")


class ReserveCredits(Contract):
    """Command: hold `amount` credits of the acting user for a piece of work."""

    reservation_id: uuid.UUID = Field(description="Chosen by the caller; repeating it returns the first result.")
    user_id: str = UserId
    email: str = Field("", max_length=320, description="The user's email, recorded on first sight.")
    amount: int = Field(gt=0, le=1_000_000, description="Credits to hold.")
    purpose: str = Field(min_length=1, max_length=64, description="What the credits pay for.", examples=["chat"])


class Reservation(Contract):
    """Reply to ReserveCredits (and what a repeated reserve returns)."""

    reservation_id: uuid.UUID
    user_id: str
    amount: int = Field(description="Credits held.")
    status: ReservationStatus
    expires_at: AwareDatetime = Field(description="When an unresolved reservation is expired and its credits return.")
    balance: Balance


class CommitReservation(Contract):
    """Command: charge `amount` (≤ the reserved amount) of a pending reservation; the rest returns."""

    reservation_id: uuid.UUID
    user_id: str = UserId
    reserved: int = Field(gt=0, description="The amount the reservation holds, as its Reservation reply said.")
    amount: int = Field(ge=0, description="Credits to charge, at most `reserved`.")


class ReleaseReservation(Contract):
    """Command: return all the credits of a pending reservation; nothing is charged."""

    reservation_id: uuid.UUID
    user_id: str = UserId
    reserved: int = Field(gt=0, description="The amount the reservation holds, as its Reservation reply said.")


class ReservationResolved(Contract):
    """Reply to CommitReservation and ReleaseReservation."""

    reservation_id: uuid.UUID
    status: ReservationStatus
    committed: int = Field(ge=0, description="Credits charged.")
    released: int = Field(ge=0, description="Credits returned to the user.")
    balance: Balance


class GrantCredits(Contract):
    """Command: add credits to an account (only the gateway, for an admin or a verified webhook, and ops publish it)."""

    idempotency_key: str = Field(min_length=1, max_length=200, description="Repeating a key returns the first result.")
    user_id: str = UserId
    email: str = Field("", max_length=320)
    amount: int = Field(gt=0, le=100_000_000)
    reason: GrantReason


class CreditsGranted(Contract):
    """Reply to GrantCredits."""

    idempotency_key: str
    amount: int
    balance: Balance


class GetBalance(Contract):
    """Query: an account's balance (created with its signup grant on first sight)."""

    user_id: str = UserId
    email: str = Field("", max_length=320)


class JournalEntry(Contract):
    """One immutable change to an account."""

    id: str = Field(description="Deterministic from the operation, so a change is journaled once.")
    user_id: str
    kind: EntryKind
    amount: int = Field(description="Credits the operation moved (for commit: the amount charged).")
    reservation_id: uuid.UUID | None = None
    reason: str | None = None
    available: int = Field(description="Change to available.")
    reserved: int = Field(description="Change to reserved.")
    spent: int = Field(description="Change to spent.")
    granted: int = Field(description="Change to granted.")
    at: AwareDatetime


class GetJournal(Contract):
    """Query: an account's journal, newest first."""

    user_id: str = UserId
    limit: int = Field(50, ge=1, le=200)
    before: str | None = Field(None, max_length=200, description="Cursor from the previous page.")


class JournalPage(Contract):
    entries: list[JournalEntry]
    next_cursor: str | None = None


class Reconcile(Contract):
    """Command (admin): recompute every balance from the journal and report drift."""

    limit: int = Field(10_000, ge=1, le=1_000_000)


class Drift(Contract):
    user_id: str
    stored: Balance
    computed: Balance


class ReconciliationReport(Contract):
    accounts: int
    drift: list[Drift]


class CreditsChanged(Contract):
    """Event: accounts changed; the entries consecutive pages of the ledger's log recorded (those
    written within a tenth of a second), in order. Delivered at least once: consumers
    deduplicate on each entry's `id`."""

    entries: list[JournalEntry] = Field(min_length=1)


class LedgerTick(Contract):
    """Command (internal, credits to itself): wake the owner of a ledger partition, so it loads
    the partition and expires abandoned reservations even when no other message comes."""

    partition: int = Field(ge=0, le=255)
