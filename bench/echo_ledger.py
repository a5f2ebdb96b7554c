"""A storage-free stand-in for the credits service, for the credits benchmark's bus ceiling.

It runs the same runtime, bus, consumer and reply path as the real service and answers
ReserveCredits, CommitReservation and GetBalance at once, touching neither MongoDB nor Redis. Pairs
through it bound what any ledger behind this bus can reach on the machine, so the benchmark
can tell the ledger's own cost (pairs ÷ ceiling) from the messaging cost (ceiling ÷ raw).

    python -m bench.echo_ledger      (started by bench/credits_bench.py)
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from functools import partial

from common.bus import Handler
from common.contracts import (
    Balance,
    CommitReservation,
    Envelope,
    GetBalance,
    Reservation,
    ReservationResolved,
    ReserveCredits,
)
from common.runtime import Runtime, run_service
from credits.settings import CreditsSettings


def _balance(user_id: str) -> Balance:
    return Balance(user_id=user_id, available=1, reserved=0, spent=0, granted=1)


async def reserve(envelope: Envelope[ReserveCredits]) -> Reservation:
    p = envelope.payload
    return Reservation(
        reservation_id=p.reservation_id,
        user_id=p.user_id,
        amount=p.amount,
        status="pending",
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
        balance=_balance(p.user_id),
    )


async def commit(envelope: Envelope[CommitReservation]) -> ReservationResolved:
    p = envelope.payload
    return ReservationResolved(
        reservation_id=p.reservation_id,
        status="committed",
        committed=p.amount,
        released=p.reserved - p.amount,
        balance=_balance(p.user_id),
    )


async def balance(envelope: Envelope[GetBalance]) -> Balance:
    return _balance(envelope.payload.user_id)


async def setup(runtime: Runtime, settings: CreditsSettings) -> dict[str, Handler]:
    return {"ReserveCredits": reserve, "CommitReservation": commit, "GetBalance": balance}


def main() -> None:
    settings = CreditsSettings()
    asyncio.run(run_service(settings, partial(setup, settings=settings), deduplicate=False))


if __name__ == "__main__":
    main()
