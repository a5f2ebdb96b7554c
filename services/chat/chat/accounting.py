"""What a chat answer costs and leaves behind: credits reserved, then committed or released,
and a usage record with its estimated provider cost."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime

from chat.costs import CostTable
from chat.job import Job
from chat.providers.base import ProviderAnswer
from chat.usage import UsageRecorder, usage_id
from common.contracts import Reservation, UsageRecord
from common.credits import CreditsClient

log = logging.getLogger(__name__)


class Accounts:
    def __init__(self, *, credits: CreditsClient, costs: CostTable, usage: UsageRecorder | None) -> None:
        self._credits = credits
        self._costs = costs
        self._usage = usage

    async def reserve(self, job: Job, amount: int) -> Reservation:
        # Derived from the message id: a redelivered request finds its first reservation.
        return await self._credits.reserve(
            job.caller, reservation_id=uuid.uuid5(job.envelope.message_id, "chat"), amount=amount, purpose="chat"
        )

    async def settle(self, job: Job, reservation: Reservation | None, *, charge: int | None) -> None:
        """Commit `charge` (None: release), without waiting for the ledger: the command is durable
        in the broker once published, and the answer need not wait for its page. A failure to
        publish leaves the reservation to expire: the user is then not charged, the safe side."""
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

    def record(self, job: Job, provider: str, answer: ProviderAnswer, *, cached: bool, credits: int) -> None:
        if self._usage is None:
            return
        cost = 0.0
        if not cached:
            cost = self._costs.usd(
                provider=provider,
                model=answer.model,
                prompt_tokens=answer.prompt_tokens,
                completion_tokens=answer.completion_tokens,
            )
        usage = UsageRecord(
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
        self._usage.record(usage)
