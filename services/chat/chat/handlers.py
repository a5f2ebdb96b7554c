"""Broker entry points of the chat service.

CompleteChat: prompt cache (single flight across replicas) → reserve credits → providers
(failover) → fill the cache → commit or release → usage record. A streamed request follows
the same path, sending chunks as they come and settling on what the requester delivered:
nothing delivered (a failure or a client gone before the first token) is released."""

from __future__ import annotations

import time

from chat.accounting import Accounts
from chat.cache import CachedAnswer, Lead, PromptCache
from chat.catalog import ModelCatalog
from chat.costs import CostTable
from chat.failover import Failover
from chat.job import Job, completion, streamed_completion, usage_of
from chat.providers.base import ProviderAnswer, ProviderRequest
from chat.streaming import delivered_usage, produced_usage, pump, replay
from chat.usage import UsageRecorder
from common.bus import ReplyStream, RpcClient
from common.contracts import (
    Caller,
    ChatCompletion,
    CompleteChat,
    Envelope,
    ListModels,
    ModelList,
    Reservation,
)
from common.credits import CreditsClient
from common.errors import Conflict, DeadlineExceeded, ServiceUnavailable, Unauthenticated, UpstreamFailed


class ChatHandlers:
    def __init__(
        self,
        *,
        failover: Failover,
        catalog: ModelCatalog,
        credits: CreditsClient,
        costs: CostTable,
        cache: PromptCache | None = None,
        usage: UsageRecorder | None = None,
        inbox: RpcClient | None = None,
        hit_price: int = 0,
        stream_ack_timeout_s: float = 10.0,
    ) -> None:
        self._failover = failover
        self._catalog = catalog
        self._accounts = Accounts(credits=credits, costs=costs, usage=usage)
        self._cache = cache
        self._inbox = inbox
        self._hit_price = hit_price
        self._ack_timeout_s = stream_ack_timeout_s

    async def list_models(self, envelope: Envelope[ListModels]) -> ModelList:
        return ModelList(models=self._catalog.models, default=self._catalog.default_model)

    async def complete_chat(self, envelope: Envelope[CompleteChat], stream: ReplyStream) -> ChatCompletion:
        if envelope.actor is None:
            raise Unauthenticated("a chat request needs an acting user")
        payload = envelope.payload
        model, max_tokens = self._catalog.resolve(payload.model, payload.max_tokens)
        job = Job(
            envelope=envelope,
            caller=Caller.of(envelope),
            request=ProviderRequest(
                messages=tuple(payload.messages),
                model=model,
                temperature=payload.temperature,
                top_p=payload.top_p,
                max_tokens=max_tokens,
            ),
            stream=stream,
            streaming=payload.stream and stream.active,
            started=time.perf_counter(),
            deadline=time.monotonic() + (envelope.seconds_left() or 0.0),
        )
        if job.streaming and self._inbox is not None:
            stream.listen(self._inbox)
        if self._cache is None:
            return await self._fresh(job, None)
        key = self._cache.key(job.request, user_id=job.user_id)
        found = await self._cache.lead_or_wait(key, deadline=job.deadline, lookup=payload.use_cache)
        if isinstance(found, CachedAnswer):
            return await self._hit(job, found)
        return await self._fresh(job, found)

    # -- a stored answer ------------------------------------------------------------------------------

    async def _hit(self, job: Job, cached: CachedAnswer) -> ChatCompletion:
        answer = cached.answer
        reservation = await self._accounts.reserve(job, self._hit_price) if self._hit_price else None
        if not job.streaming:
            await self._accounts.settle(job, reservation, charge=self._hit_price)
            self._accounts.record(job, cached.provider, answer, cached=True, credits=self._hit_price)
            return completion(job, cached.provider, answer, cached=True, credits=self._hit_price)
        out = await pump(
            replay(answer),
            job.stream,
            provider=cached.provider,
            model=answer.model,
            cached=True,
            deadline=job.deadline,
            idle_timeout_s=self._failover.policy.attempt_timeout_s,
            ack_timeout_s=self._ack_timeout_s,
        )
        charge = self._hit_price if out.delivered else 0
        await self._accounts.settle(job, reservation, charge=charge if out.delivered else None)
        self._accounts.record(job, cached.provider, answer, cached=True, credits=charge)
        return streamed_completion(job, cached.provider, answer.model, out, cached=True, credits=charge)

    # -- a provider's answer --------------------------------------------------------------------------

    async def _fresh(self, job: Job, lead: Lead | None) -> ChatCompletion:
        try:
            reservation = await self._accounts.reserve(job, self._catalog.reservation(job.request))
            if reservation.status != "pending":  # a redelivered request that was answered already
                raise Conflict("this request was answered already", status_now=reservation.status)
        except BaseException:
            if lead is not None:
                await lead.abandon()
            raise
        if job.streaming:
            return await self._fresh_stream(job, lead, reservation)
        try:
            provider, answer = await self._failover.complete(job.request, deadline=job.deadline, user=job.user_id)
        except BaseException as exc:
            await self._accounts.settle(job, reservation, charge=None)
            await _end(lead, exc)
            raise
        if lead is not None:
            await lead.fill(CachedAnswer(provider.name, answer))  # followers go on while we settle
        if job.envelope.expired():
            await self._accounts.settle(job, reservation, charge=None)
            raise DeadlineExceeded("the answer came after the requester had gone")
        usage = usage_of(answer)
        charge = self._catalog.charge(job.request, total_tokens=usage.total_tokens)
        await self._accounts.settle(job, reservation, charge=charge)
        self._accounts.record(job, provider.name, answer, cached=False, credits=charge)
        return completion(job, provider.name, answer, cached=False, credits=charge)

    async def _fresh_stream(self, job: Job, lead: Lead | None, reservation: Reservation) -> ChatCompletion:
        try:
            provider, source = await self._failover.open_stream(job.request, deadline=job.deadline, user=job.user_id)
        except BaseException as exc:
            await self._accounts.settle(job, reservation, charge=None)
            await _end(lead, exc)
            raise
        out = await pump(
            source,
            job.stream,
            provider=provider.name,
            model=provider.model_for(job.request.model),
            cached=False,
            deadline=job.deadline,
            idle_timeout_s=self._failover.policy.attempt_timeout_s,
            ack_timeout_s=self._ack_timeout_s,
        )
        if out.provider_failed:
            self._failover.stream_failed(provider, user=job.user_id, timed_out=out.timed_out)
        if lead is not None:
            if out.complete and out.answer is not None:
                await lead.fill(CachedAnswer(provider.name, out.answer))
            else:
                await lead.abandon()
        charge = 0
        if out.delivered:
            usage = delivered_usage(out, job.request.messages)
            charge = self._catalog.charge(job.request, total_tokens=usage.total_tokens)
        await self._accounts.settle(job, reservation, charge=charge if out.delivered else None)
        produced = produced_usage(out, job.request.messages)
        answer = out.answer or ProviderAnswer(
            text="".join(out.sent),
            model=provider.model_for(job.request.model),
            prompt_tokens=produced.prompt_tokens,
            completion_tokens=produced.completion_tokens,
            finish_reason=out.finish,
        )
        self._accounts.record(job, provider.name, answer, cached=False, credits=charge)
        return streamed_completion(job, provider.name, answer.model, out, cached=False, credits=charge)


async def _end(lead: Lead | None, exc: BaseException) -> None:
    """A leader that got no answer: share a provider verdict with its followers, else let one take over."""
    if lead is None:
        return
    if isinstance(exc, UpstreamFailed | ServiceUnavailable):
        await lead.fail(exc)
    else:
        await lead.abandon()
