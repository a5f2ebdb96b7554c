"""Broker entry point for CreateEmbeddings: reserve credits for the worst case (the inputs' bytes)
→ the provider owning the model (retries, breaker: `chat.embedding_failover`) → commit the price
of the tokens it counted, or release on any failure → usage record, as a chat answer's.

Idempotent by itself, as CompleteChat is: the reservation derives from the message id, so a
repeated request finds it settled and gets an error (`chat.settlement.settled_before`) before
any provider call, and its usage record has the same id."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime

from chat.embedding_catalog import EmbeddingCatalog
from chat.embedding_failover import EmbeddingFailover
from chat.provider_costs import CostTable
from chat.providers.embedding import EmbeddingAnswer, EmbeddingRequest
from chat.settlement import settled_before
from chat.usage import UsageRecorder, usage_id
from common.bus import redelivered
from common.contracts import Caller, CreateEmbeddings, Embeddings, EmbeddingUsage, Envelope, Reservation, UsageRecord
from common.credits import CreditsClient
from common.errors import DeadlineExceeded, Unauthenticated

log = logging.getLogger(__name__)


class EmbeddingHandlers:
    def __init__(
        self,
        *,
        failover: EmbeddingFailover,
        catalog: EmbeddingCatalog,
        credits: CreditsClient,
        costs: CostTable,
        usage: UsageRecorder | None = None,
    ) -> None:
        self._failover = failover
        self._catalog = catalog
        self._credits = credits
        self._costs = costs
        self._usage = usage

    async def create_embeddings(self, envelope: Envelope[CreateEmbeddings]) -> Embeddings:
        if envelope.actor is None:
            raise Unauthenticated("an embeddings request needs an acting user")
        payload = envelope.payload
        offer = self._catalog.resolve(payload.model, dimensions=payload.dimensions, inputs=len(payload.input))
        request = EmbeddingRequest(inputs=tuple(payload.input), model=offer.model, dimensions=payload.dimensions)
        caller = Caller.of(envelope)
        started = time.perf_counter()
        deadline = time.monotonic() + (envelope.seconds_left() or 0.0)
        reservation = await self._credits.reserve(
            caller,
            reservation_id=uuid.uuid5(envelope.message_id, "embeddings"),
            amount=self._catalog.reservation(request),
            purpose="embeddings",
        )
        if reservation.status != "pending":  # an earlier delivery of this request settled it
            raise settled_before(reservation, redelivered=redelivered())
        try:
            provider, answer = await self._failover.embed(request, deadline=deadline, user=envelope.actor.id)
        except BaseException:
            await self._settle(caller, reservation, charge=None)
            raise
        if envelope.expired():
            await self._settle(caller, reservation, charge=None)
            raise DeadlineExceeded("the vectors came after the requester had gone")
        charge = self._catalog.charge(request, prompt_tokens=answer.prompt_tokens)
        await self._settle(caller, reservation, charge=charge)
        self._record(envelope, provider.name, answer, credits=charge, started=started)
        return Embeddings(
            vectors=list(answer.vectors),
            model=answer.model,
            provider=provider.name,
            usage=EmbeddingUsage(prompt_tokens=answer.prompt_tokens, total_tokens=answer.prompt_tokens),
            credits=charge,
        )

    async def _settle(self, caller: Caller, reservation: Reservation, *, charge: int | None) -> None:
        """Commit `charge` (None: release) without waiting for the ledger, as a chat answer is settled
        (`chat.settlement`): a failure to publish leaves the hold to expire, uncharged."""
        try:
            if charge is None:
                await self._credits.release(caller, reservation, wait=False)
            else:
                await self._credits.commit(caller, reservation, amount=charge, wait=False)
        except Exception:
            log.exception(
                "settling credits failed; the reservation will expire",
                extra={"reservation_id": str(reservation.reservation_id)},
            )

    def _record(
        self,
        envelope: Envelope[CreateEmbeddings],
        provider: str,
        answer: EmbeddingAnswer,
        *,
        credits: int,
        started: float,
    ) -> None:
        if self._usage is None or envelope.actor is None:
            return
        cost = self._costs.usd(
            provider=provider, model=answer.model, prompt_tokens=answer.prompt_tokens, completion_tokens=0
        )
        self._usage.record(
            UsageRecord(
                usage_id=usage_id(envelope.message_id),
                user_id=envelope.actor.id,
                provider=provider,
                model=answer.model,
                prompt_tokens=answer.prompt_tokens,
                completion_tokens=0,
                latency_ms=round((time.perf_counter() - started) * 1000, 3),
                cached=False,
                streamed=False,
                cost_usd=cost,
                credits=credits,
                at=datetime.now(UTC),
                request_id=envelope.request_id,
            )
        )
