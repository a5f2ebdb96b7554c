"""Broker entry points of the credits service: the ledger's commands and queries."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from common.contracts import (
    Actor,
    Balance,
    CommitReservation,
    CreditsGranted,
    CreditsReport,
    Envelope,
    GetBalance,
    GetCreditsReport,
    GetJournal,
    GrantCredits,
    JournalPage,
    Reconcile,
    ReconciliationReport,
    ReleaseReservation,
    Reservation,
    ReservationResolved,
    ReserveCredits,
)
from common.errors import Conflict, Forbidden, InsufficientCredits, ValidationFailed
from credits import metrics
from credits.cache import BalanceCache
from credits.ledger import TERMINAL
from credits.reconcile import reconcile
from credits.report import credits_report
from credits.repository import AccountRepository, balance_of

Doc = dict[str, Any]


def _authorize(actor: Actor | None, user_id: str) -> None:
    """Users act on their own account; admins and internal services (no actor) on any."""
    if actor is not None and actor.role != "admin" and actor.id != user_id:
        raise Forbidden("not your account")


class CreditsHandlers:
    def __init__(
        self,
        *,
        repo: AccountRepository,
        cache: BalanceCache,
        reservation_ttl: timedelta,
        on_change: Callable[[], object],
    ) -> None:
        self._repo = repo
        self._cache = cache
        self._ttl = reservation_ttl
        self._on_change = on_change

    async def changed(self, doc: Doc) -> Balance:
        """After any change: refresh the cached balance and wake the journal flusher."""
        balance = balance_of(doc)
        await self._cache.put(balance, version=doc["version"])
        self._on_change()
        return balance

    async def reserve(self, envelope: Envelope[ReserveCredits]) -> Reservation:
        p = envelope.payload
        _authorize(envelope.actor, p.user_id)
        try:
            held = await self._repo.reserve(
                user_id=p.user_id,
                email=p.email,
                reservation_id=str(p.reservation_id),
                amount=p.amount,
                purpose=p.purpose,
                ttl=self._ttl,
                now=datetime.now(UTC),
            )
        except InsufficientCredits:
            metrics.INSUFFICIENT.inc()
            metrics.OPERATIONS.labels("reserve", "refused").inc()
            raise
        if held.applied:
            metrics.applied("reserve", p.amount)
        else:
            metrics.OPERATIONS.labels("reserve", "replayed").inc()
        balance = await self.changed(held.account)
        return Reservation(
            reservation_id=p.reservation_id,
            user_id=p.user_id,
            amount=held.hold["amount"],
            status=held.hold["status"],
            expires_at=held.hold["expiresAt"],
            balance=balance,
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
        self, user_id: str, reservation_id: uuid.UUID, *, held: int, used: int, kind: Any
    ) -> ReservationResolved:
        try:
            resolution = await self._repo.resolve(
                user_id=user_id,
                reservation_id=str(reservation_id),
                held=held,
                used=used,
                kind=kind,
                now=datetime.now(UTC),
            )
        except (Conflict, ValidationFailed):
            metrics.OPERATIONS.labels(kind, "refused").inc()
            raise
        if resolution.applied:
            metrics.applied(kind, resolution.used if kind == "commit" else held)
        else:
            metrics.OPERATIONS.labels(kind, "replayed").inc()
        balance = await self.changed(resolution.account)
        status = TERMINAL[resolution.kind]
        return ReservationResolved(
            reservation_id=reservation_id,
            status=status,
            committed=resolution.used,
            released=held - resolution.used,
            balance=balance,
        )  # type: ignore[arg-type]

    async def grant(self, envelope: Envelope[GrantCredits]) -> CreditsGranted:
        p = envelope.payload
        if envelope.actor is not None and envelope.actor.role != "admin":
            raise Forbidden("only admins and internal services grant credits")
        doc = await self._repo.grant(
            user_id=p.user_id,
            email=p.email,
            key=p.idempotency_key,
            amount=p.amount,
            reason=p.reason,
            now=datetime.now(UTC),
        )
        return CreditsGranted(idempotency_key=p.idempotency_key, amount=p.amount, balance=await self.changed(doc))

    async def get_balance(self, envelope: Envelope[GetBalance]) -> Balance:
        p = envelope.payload
        _authorize(envelope.actor, p.user_id)
        cached = await self._cache.get(p.user_id)
        if cached is not None:
            return cached
        balance, version = await self._repo.balance(user_id=p.user_id, email=p.email, now=datetime.now(UTC))
        await self._cache.put(balance, version=version)
        return balance

    async def get_journal(self, envelope: Envelope[GetJournal]) -> JournalPage:
        p = envelope.payload
        _authorize(envelope.actor, p.user_id)
        entries, cursor = await self._repo.history(user_id=p.user_id, limit=p.limit, before=p.before)
        return JournalPage(entries=entries, next_cursor=cursor)

    async def reconcile(self, envelope: Envelope[Reconcile]) -> ReconciliationReport:
        if envelope.actor is not None and envelope.actor.role != "admin":
            raise Forbidden("admins only")
        return await reconcile(self._repo, limit=envelope.payload.limit)

    async def credits_report(self, envelope: Envelope[GetCreditsReport]) -> CreditsReport:
        if envelope.actor is not None and envelope.actor.role != "admin":
            raise Forbidden("admins only")
        return await credits_report(self._repo, envelope.payload)

    def routes(self) -> dict[str, Any]:
        return {
            "GetCreditsReport": self.credits_report,
            "ReserveCredits": self.reserve,
            "CommitReservation": self.commit,
            "ReleaseReservation": self.release,
            "GrantCredits": self.grant,
            "GetBalance": self.get_balance,
            "GetJournal": self.get_journal,
            "Reconcile": self.reconcile,
        }
