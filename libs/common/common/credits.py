"""Typed request/reply with the credits service, for every service that spends or shows
credits. Follow-up commands (commit, release) get a deadline of their own: they must land
even when the request that caused them has run out of time. Message ids derive from the
reservation id, so a retried request can never reserve or settle twice.

A settlement may also be sent without waiting for the ledger's answer (`wait=False`): it is
then published as a persistent command and confirmed by the broker (durable from then on)
and valid until the hold would expire; the ledger applies it exactly once, in order with
whatever that account's partition queue holds (so a later balance read sees it). Should the
ledger's store be down when it arrives, the ledger's consumer hands it back to the queue after a
backoff (`common.bus.retry`) until it is applied, its deadline passes (the hold then expires:
not charged) or its attempts are spent (dead-lettered, kept for a look); reads answered in
between do not see it yet.

Every command here is coalesced (see `common.bus.rpc`): the reserves, settlements and
balance reads a process makes in one turn of its event loop reach the ledger as one message,
which its group commit then writes as one page."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol, overload

from opentelemetry import trace

from common import telemetry
from common.bus import Requester, Sent
from common.contracts import (
    Balance,
    Caller,
    CommitReservation,
    GetBalance,
    GetJournal,
    JournalPage,
    Reconcile,
    ReconciliationReport,
    ReleaseReservation,
    Reservation,
    ReservationResolved,
    ReserveCredits,
)

SETTLE_S = 10.0
tracer = trace.get_tracer("common.credits")


def _settle_deadline(caller: Caller) -> datetime:
    floor = datetime.now(UTC) + timedelta(seconds=SETTLE_S)
    return max(caller.deadline, floor) if caller.deadline else floor


def _attributes(reservation_id: uuid.UUID, amount: int) -> dict[str, str | int]:
    return {"aisaas.reservation_id": str(reservation_id), "aisaas.credits": amount}


class CreditHolds(Protocol):
    """What a service that charges for its work needs of the ledger: hold credits, then charge
    them or give them back. `CreditsClient` is the one over the bus; unit tests pass their own."""

    async def reserve(
        self, caller: Caller, *, reservation_id: uuid.UUID, amount: int, purpose: str, sent: Sent | None = None
    ) -> Reservation: ...

    # With `wait`, the ledger's answer; without, None once the command is durable on the broker.
    @overload
    async def commit(
        self, caller: Caller, reservation: Reservation, *, amount: int, wait: Literal[True] = True
    ) -> ReservationResolved: ...
    @overload
    async def commit(
        self, caller: Caller, reservation: Reservation, *, amount: int, wait: bool
    ) -> ReservationResolved | None: ...

    @overload
    async def release(
        self, caller: Caller, reservation: Reservation, *, wait: Literal[True] = True
    ) -> ReservationResolved: ...
    @overload
    async def release(self, caller: Caller, reservation: Reservation, *, wait: bool) -> ReservationResolved | None: ...


class CreditsClient:
    def __init__(self, rpc: Requester) -> None:
        self._rpc = rpc

    async def reserve(
        self, caller: Caller, *, reservation_id: uuid.UUID, amount: int, purpose: str, sent: Sent | None = None
    ) -> Reservation:
        """Hold `amount` credits; `sent` is called once the broker has the command (see RpcClient.call)."""
        assert caller.actor is not None, "credits are reserved for a user"
        payload = ReserveCredits(
            reservation_id=reservation_id,
            user_id=caller.actor.id,
            email=caller.actor.email,
            amount=amount,
            purpose=purpose,
        )
        envelope = caller.envelope(payload, message_id=uuid.uuid5(reservation_id, "reserve"))
        with telemetry.span(tracer, "credits reserve", attributes=_attributes(reservation_id, amount)):
            return await self._rpc.call(envelope, reply_model=Reservation, coalesce=True, sent=sent)

    @overload
    async def commit(
        self, caller: Caller, reservation: Reservation, *, amount: int, wait: Literal[True] = True
    ) -> ReservationResolved: ...
    @overload
    async def commit(
        self, caller: Caller, reservation: Reservation, *, amount: int, wait: bool
    ) -> ReservationResolved | None: ...
    async def commit(
        self, caller: Caller, reservation: Reservation, *, amount: int, wait: bool = True
    ) -> ReservationResolved | None:
        payload = CommitReservation(
            reservation_id=reservation.reservation_id,
            user_id=reservation.user_id,
            reserved=reservation.amount,
            amount=amount,
        )
        with telemetry.span(tracer, "credits commit", attributes=_attributes(reservation.reservation_id, amount)):
            return await self._settle(caller, reservation, payload, "commit", wait=wait)

    @overload
    async def release(
        self, caller: Caller, reservation: Reservation, *, wait: Literal[True] = True
    ) -> ReservationResolved: ...
    @overload
    async def release(self, caller: Caller, reservation: Reservation, *, wait: bool) -> ReservationResolved | None: ...
    async def release(
        self, caller: Caller, reservation: Reservation, *, wait: bool = True
    ) -> ReservationResolved | None:
        payload = ReleaseReservation(
            reservation_id=reservation.reservation_id, user_id=reservation.user_id, reserved=reservation.amount
        )
        with telemetry.span(
            tracer, "credits release", attributes=_attributes(reservation.reservation_id, reservation.amount)
        ):
            return await self._settle(caller, reservation, payload, "release", wait=wait)

    async def _settle(
        self,
        caller: Caller,
        reservation: Reservation,
        payload: CommitReservation | ReleaseReservation,
        kind: str,
        *,
        wait: bool,
    ) -> ReservationResolved | None:
        message_id = uuid.uuid5(reservation.reservation_id, kind)
        if not wait:
            envelope = caller.envelope(payload, message_id=message_id, deadline=reservation.expires_at)
            await self._rpc.publish(envelope, coalesce=True)
            return None
        envelope = caller.envelope(payload, message_id=message_id, deadline=_settle_deadline(caller))
        return await self._rpc.call(envelope, reply_model=ReservationResolved, coalesce=True)

    async def balance(self, caller: Caller) -> Balance:
        assert caller.actor is not None
        return await self._rpc.call(
            caller.envelope(GetBalance(user_id=caller.actor.id, email=caller.actor.email)),
            reply_model=Balance,
            coalesce=True,
        )

    async def journal(self, caller: Caller, *, limit: int, before: str | None) -> JournalPage:
        assert caller.actor is not None
        payload = GetJournal(user_id=caller.actor.id, limit=limit, before=before)
        return await self._rpc.call(caller.envelope(payload), reply_model=JournalPage)

    async def reconcile(self, caller: Caller) -> ReconciliationReport:
        return await self._rpc.call(caller.envelope(Reconcile()), reply_model=ReconciliationReport)
