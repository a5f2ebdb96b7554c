"""In-memory stand-ins for what the chat handlers talk to: the credits client and providers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Literal

from chat.providers.base import ProviderAnswer, ProviderError, ProviderRequest, ProviderStream, pieces
from common.bus import Sent
from common.contracts import Actor, Balance, Caller, Reservation, ReservationResolved
from common.errors import InsufficientCredits

ACTOR = Actor(id="u1", email="u1@example.com", role="user")


class FakeCredits:
    """Implements the CreditsClient interface in memory, recording what the handler asked."""

    def __init__(self, available: int = 100) -> None:
        self.available = available
        self.calls: list[tuple[str, int]] = []

    async def reserve(
        self, caller: Caller, *, reservation_id: uuid.UUID, amount: int, purpose: str, sent: Sent | None = None
    ) -> Reservation:
        if sent is not None:
            sent()  # the command is with the broker
        if amount > self.available:
            raise InsufficientCredits("no", balance=self.available, price=amount)
        self.available -= amount
        self.calls.append(("reserve", amount))
        balance = Balance(user_id=ACTOR.id, available=self.available, reserved=amount, spent=0, granted=100)
        expires_at = datetime.now(UTC) + timedelta(minutes=5)
        return Reservation(
            reservation_id=reservation_id,
            user_id=ACTOR.id,
            amount=amount,
            status="pending",
            expires_at=expires_at,
            balance=balance,
        )

    async def commit(
        self, caller: Caller, reservation: Reservation, *, amount: int, wait: bool = True
    ) -> ReservationResolved:
        self.calls.append(("commit", amount))
        self.available += reservation.amount - amount
        return self._resolved(reservation, "committed", amount)

    async def release(self, caller: Caller, reservation: Reservation, *, wait: bool = True) -> ReservationResolved:
        self.calls.append(("release", reservation.amount))
        self.available += reservation.amount
        return self._resolved(reservation, "released", 0)

    @staticmethod
    def _resolved(
        reservation: Reservation, status: Literal["committed", "released"], committed: int
    ) -> ReservationResolved:
        return ReservationResolved(
            reservation_id=reservation.reservation_id,
            status=status,
            committed=committed,
            released=reservation.amount - committed,
            balance=reservation.balance,
        )


Outcome = ProviderError | float | str  # an error to raise, seconds to hang, or the answer's text


class ScriptedProvider:
    """A provider whose calls go as scripted, in order; after the script it answers "fine"."""

    def __init__(self, name: str, script: Iterable[Outcome] = (), *, prefixes: tuple[str, ...] = ()) -> None:
        self.name = name
        self.default_model = f"{name}-default"
        self._script = list(script)
        self._prefixes = prefixes or (f"{name}-",)
        self.calls: list[ProviderRequest] = []

    def owns(self, model: str) -> bool:
        return model.startswith(self._prefixes)

    def model_for(self, requested: str) -> str:
        return requested if self.owns(requested) else self.default_model

    async def _outcome(self, request: ProviderRequest) -> ProviderAnswer:
        self.calls.append(request)
        step: Outcome = self._script.pop(0) if self._script else "fine"
        if isinstance(step, ProviderError):
            raise step
        if isinstance(step, float):
            await asyncio.sleep(step)
            step = "late"
        return ProviderAnswer(text=f"{self.name}: {step}", model=request.model, prompt_tokens=3, completion_tokens=2)

    async def complete(self, request: ProviderRequest) -> ProviderAnswer:
        return await self._outcome(request)

    async def stream(self, request: ProviderRequest) -> ProviderStream:
        answer = await self._outcome(request)
        for piece in pieces(answer.text):
            yield piece
        yield answer

    async def aclose(self) -> None:
        return None


def failure(provider: str, status: int) -> ProviderError:
    return ProviderError(provider, f"HTTP {status}", retryable=status == 429 or status >= 500, status=status)
