"""What a chat answer costs and leaves behind: credits reserved, then committed or released,
a usage record with its estimated provider cost, and for a threaded request its turn in the
thread (kept before the charge: a turn that cannot be kept is not charged)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime

from chat.conversations import turn_id_of
from chat.job import Job
from chat.provider_costs import CostTable
from chat.providers.base import ProviderAnswer
from chat.usage import UsageRecorder, usage_id
from common.bus import Sent
from common.contracts import Reservation, UsageRecord
from common.credits import CreditHolds
from common.errors import Conflict, DeadlineExceeded, OutcomeUnknown, PlatformError, ServiceUnavailable

# How long past its deadline a request still waits for its turn to be stored (its reply may be
# dropped by then, but the turn is kept or not, and charged accordingly).
KEEP_GRACE_S = 1.0

log = logging.getLogger(__name__)


def settled_before(reservation: Reservation, *, redelivered: bool) -> PlatformError:
    """The error for a request whose hold an earlier delivery of the same message settled. Sent
    again by its client, it was answered: 409. Redelivered by the broker (the consumer before went
    or lost its link before its ack), that delivery may have charged the hold and died before its
    answer went out, to a requester still waiting for this one: 504, outcome unknown, never a
    refusal (it may have been charged)."""
    if redelivered:
        return OutcomeUnknown("an earlier delivery of this request may have answered it", status_now=reservation.status)
    return Conflict("this request was answered already", status_now=reservation.status)


class Accounts:
    def __init__(self, *, credits: CreditHolds, costs: CostTable, usage: UsageRecorder | None) -> None:
        self._credits = credits
        self._costs = costs
        self._usage = usage

    async def reserve(self, job: Job, amount: int, *, sent: Sent | None = None) -> Reservation:
        # Derived from the message id: a redelivered request finds its first reservation.
        return await self._credits.reserve(
            job.caller,
            reservation_id=uuid.uuid5(job.envelope.message_id, "chat"),
            amount=amount,
            purpose="chat",
            sent=sent,
        )

    async def settle(self, job: Job, reservation: Reservation | None, *, charge: int | None) -> None:
        """Commit `charge` (None: release) and return once the broker has confirmed the command, not
        once the ledger has applied it. The answer goes out after this, so whatever it prompts (a
        balance read, queued behind the command on its partition's queue) sees the charge. A failure
        to publish leaves the reservation to expire: the user is then not charged, the safe side."""
        if reservation is None:
            return
        try:
            if charge is None:
                await self._credits.release(job.caller, reservation, wait=False)
            else:
                await self._credits.commit(job.caller, reservation, amount=charge, wait=False)
        except Exception:
            log.exception(
                "settling credits failed; the reservation will expire",
                extra={"reservation_id": str(reservation.reservation_id)},
            )

    async def conclude(
        self,
        job: Job,
        reservation: Reservation | None,
        provider: str,
        answer: ProviderAnswer,
        *,
        cached: bool,
        charge: int | None,
        turn_text: str | None,
    ) -> None:
        """Settle an answer (`charge` None: release) and record its usage. A threaded request's turn
        (the new messages and `turn_text`, the answer as its requester got it) is kept first, with the
        usage record in the same flush; if it cannot be, nothing is charged and the error is raised."""
        if charge is None:
            await self.settle(job, reservation, charge=None)
            self.record(job, provider, answer, cached=cached, credits=0)
            return
        if job.conversation is None or turn_text is None:
            self.record(job, provider, answer, cached=cached, credits=charge)
            await self.settle(job, reservation, charge=charge)
            return
        try:
            await self._keep(job, provider, answer, cached=cached, credits=charge, text=turn_text)
        except BaseException:
            await self.settle(job, reservation, charge=None)
            raise
        await self.settle(job, reservation, charge=charge)

    async def _keep(
        self, job: Job, provider: str, answer: ProviderAnswer, *, cached: bool, credits: int, text: str
    ) -> None:
        assert job.conversation is not None
        if self._usage is None:
            raise ServiceUnavailable("conversations are not kept by this chat service")
        usage = self.usage_record(job, provider, answer, cached=cached, credits=credits)
        turn = job.conversation.turn(
            turn_id=turn_id_of(job.envelope.message_id),
            answer=text,
            at=usage.at,
            provider=provider,
            model=answer.model,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            credits=credits,
            cost_usd=usage.cost_usd,
        )
        try:
            async with asyncio.timeout(max(job.deadline - time.monotonic(), 0.0) + KEEP_GRACE_S):
                await self._usage.keep(usage, turn)
        except TimeoutError:
            raise DeadlineExceeded("the conversation could not be saved in time; nothing was charged") from None

    def record(self, job: Job, provider: str, answer: ProviderAnswer, *, cached: bool, credits: int) -> None:
        if self._usage is None:
            return
        self._usage.record(self.usage_record(job, provider, answer, cached=cached, credits=credits))

    def usage_record(
        self, job: Job, provider: str, answer: ProviderAnswer, *, cached: bool, credits: int
    ) -> UsageRecord:
        cost = 0.0
        if not cached:
            cost = self._costs.usd(
                provider=provider,
                model=answer.model,
                prompt_tokens=answer.prompt_tokens,
                completion_tokens=answer.completion_tokens,
            )
        return UsageRecord(
            usage_id=usage_id(job.envelope.message_id),
            user_id=job.user_id,
            provider=provider,
            model=answer.model,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            latency_ms=round((time.perf_counter() - job.started) * 1000, 3),
            cached=cached,
            streamed=job.streaming,
            cost_usd=cost,
            credits=credits,
            at=datetime.now(UTC),
            request_id=job.envelope.request_id,
        )
