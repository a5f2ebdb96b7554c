"""Broker entry points of the credits service: the ledger's commands and queries.

Account-scoped messages arrive on the queue of the partition owning the account and run in
that partition's next batch; Reconcile and GetCreditsReport read the store from any replica."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from common.bus import reply_expected
from common.contracts import (
    Actor,
    Balance,
    CommitReservation,
    CreditsGranted,
    CreditsReport,
    EntryKind,
    Envelope,
    GetBalance,
    GetCreditsReport,
    GetJournal,
    GrantCredits,
    JournalPage,
    LedgerTick,
    Reconcile,
    ReconciliationReport,
    ReleaseReservation,
    Reservation,
    ReservationResolved,
    ReserveCredits,
)
from common.errors import Conflict, Forbidden, InsufficientCredits, ValidationFailed
from credits import metrics
from credits.accounts import AccountStore
from credits.history import history
from credits.ledger import TERMINAL
from credits.log import LedgerLog
from credits.partitions import Partitions
from credits.reconcile import reconcile
from credits.report import credits_report


def _authorize(actor: Actor | None, user_id: str) -> None:
    """Users act on their own account; admins and services acting for no user on any. Who may
    send each command at all, and whose admin claim counts, the consumer has already checked
    against the message's broker-verified publisher (`common.bus.trust`)."""
    if actor is not None and actor.role != "admin" and actor.id != user_id:
        raise Forbidden("not your account")


class CreditsHandlers:
    def __init__(self, *, ledger: Partitions, log: LedgerLog, store: AccountStore, reservation_ttl: timedelta) -> None:
        self._ledger = ledger
        self._log = log
        self._store = store
        self._ttl = reservation_ttl

    async def reserve(self, envelope: Envelope[ReserveCredits]) -> Reservation:
        p = envelope.payload
        _authorize(envelope.actor, p.user_id)
        try:
            held = await self._ledger.of(p.user_id).submit(
                lambda book, now: book.reserve(
                    user_id=p.user_id,
                    email=p.email,
                    reservation_id=str(p.reservation_id),
                    amount=p.amount,
                    purpose=p.purpose,
                    ttl=self._ttl,
                    now=now,
                ),
                users=(p.user_id,),
            )
        except InsufficientCredits:
            metrics.INSUFFICIENT.inc()
            metrics.OPERATIONS.labels("reserve", "refused").inc()
            raise
        if held.applied:
            metrics.applied("reserve", p.amount)
        else:
            metrics.OPERATIONS.labels("reserve", "replayed").inc()
        return Reservation(
            reservation_id=p.reservation_id,
            user_id=p.user_id,
            amount=held.amount,
            status=held.status,
            expires_at=held.expires_at,
            balance=held.balance,
        )

    async def commit(self, envelope: Envelope[CommitReservation]) -> ReservationResolved:
        p = envelope.payload
        _authorize(envelope.actor, p.user_id)
        return await self._resolve(p.user_id, p.reservation_id, held=p.reserved, used=p.amount, kind="commit")

    async def release(self, envelope: Envelope[ReleaseReservation]) -> ReservationResolved:
        p = envelope.payload
        _authorize(envelope.actor, p.user_id)
        return await self._resolve(p.user_id, p.reservation_id, held=p.reserved, used=0, kind="release")

    async def _resolve(
        self, user_id: str, reservation_id: uuid.UUID, *, held: int, used: int, kind: EntryKind
    ) -> ReservationResolved:
        try:
            resolution = await self._ledger.of(user_id).submit(
                lambda book, now: book.resolve(
                    user_id=user_id, reservation_id=str(reservation_id), held=held, used=used, kind=kind, now=now
                ),
                users=(user_id,),
                urgent=reply_expected(),  # a settlement nobody waits for may wait LEDGER_LINGER_MS for company
            )
        except (Conflict, ValidationFailed):
            metrics.OPERATIONS.labels(kind, "refused").inc()
            raise
        if resolution.applied:
            metrics.applied(kind, resolution.used if kind == "commit" else held)
        else:
            metrics.OPERATIONS.labels(kind, "replayed").inc()
        return ReservationResolved(
            reservation_id=reservation_id,
            status=TERMINAL[resolution.kind],
            committed=resolution.used,
            released=held - resolution.used,
            balance=resolution.balance,
        )

    async def grant(self, envelope: Envelope[GrantCredits]) -> CreditsGranted:
        p = envelope.payload
        if envelope.actor is not None and envelope.actor.role != "admin":
            raise Forbidden("only admins grant credits")
        balance, applied = await self._ledger.of(p.user_id).submit(
            lambda book, now: book.grant(
                user_id=p.user_id, email=p.email, key=p.idempotency_key, amount=p.amount, reason=p.reason, now=now
            ),
            users=(p.user_id,),
        )
        if applied:
            metrics.applied("grant", p.amount)
        else:
            metrics.OPERATIONS.labels("grant", "replayed").inc()
        return CreditsGranted(idempotency_key=p.idempotency_key, amount=p.amount, balance=balance)

    async def get_balance(self, envelope: Envelope[GetBalance]) -> Balance:
        p = envelope.payload
        _authorize(envelope.actor, p.user_id)
        return await self._ledger.of(p.user_id).submit(
            lambda book, now: book.balance(user_id=p.user_id, email=p.email, now=now), users=(p.user_id,)
        )

    async def get_journal(self, envelope: Envelope[GetJournal]) -> JournalPage:
        p = envelope.payload
        _authorize(envelope.actor, p.user_id)
        partition = self._ledger.of(p.user_id)
        head = await partition.submit(lambda book, now: book.history_head(p.user_id), users=(p.user_id,))
        entries, cursor = await history(
            self._log, partition=partition.number, user_id=p.user_id, head=head, limit=p.limit, before=p.before
        )
        return JournalPage(entries=entries, next_cursor=cursor)

    async def tick(self, envelope: Envelope[LedgerTick]) -> None:
        """Load the partition if this replica has just been handed it; its timers do the rest."""
        await self._ledger.number(envelope.payload.partition).submit(lambda book, now: None)

    async def reconcile(self, envelope: Envelope[Reconcile]) -> ReconciliationReport:
        if envelope.actor is not None and envelope.actor.role != "admin":
            raise Forbidden("admins only")
        return await reconcile(self._store, self._log, limit=envelope.payload.limit)

    async def credits_report(self, envelope: Envelope[GetCreditsReport]) -> CreditsReport:
        if envelope.actor is not None and envelope.actor.role != "admin":
            raise Forbidden("admins only")
        return await credits_report(self._log, envelope.payload)

    def routes(self) -> dict[str, Any]:
        return {
            "GetCreditsReport": self.credits_report,
            "ReserveCredits": self.reserve,
            "CommitReservation": self.commit,
            "ReleaseReservation": self.release,
            "GrantCredits": self.grant,
            "GetBalance": self.get_balance,
            "GetJournal": self.get_journal,
            "LedgerTick": self.tick,
            "Reconcile": self.reconcile,
        }
