"""Broker entry points of the chat service.

CompleteChat: prompt cache (single flight across replicas) → reserve credits → providers
(failover) → fill the cache → commit or release → usage record. A streamed request follows
the same path, sending chunks as they come and settling on what the requester delivered:
nothing delivered (a failure or a client gone before the first token) is released. A threaded
request (its `thread_id`) sends the thread's context and keeps its turn before it is charged."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from chat import metrics
from chat.cache import CachedAnswer, Lead, PromptCache
from chat.cachekey import cacheable
from chat.catalog import ModelCatalog
from chat.conversations import Conversations
from chat.failover import Failover
from chat.headroom import Headroom
from chat.job import Job, completion, fitted, streamed_completion, usage_of
from chat.provider_costs import CostTable
from chat.providers.base import ChatProvider, ProviderAnswer, ProviderRequest
from chat.settlement import Accounts, settled_before
from chat.streaming import Pumped, delivered_usage, produced_usage, pump, replay
from chat.thread_documents import TurnDoc
from chat.usage import UsageRecorder
from common.bus import ReplyStream, RpcClient, Sent, redelivered
from common.contracts import (
    Caller,
    ChatCompletion,
    CompleteChat,
    Envelope,
    Reservation,
)
from common.credits import CreditHolds
from common.errors import BadRequest, DeadlineExceeded, ServiceUnavailable, Unauthenticated, UpstreamFailed

log = logging.getLogger(__name__)


class ChatHandlers:
    def __init__(
        self,
        *,
        failover: Failover,
        catalog: ModelCatalog,
        credits: CreditHolds,
        costs: CostTable,
        cache: PromptCache | None = None,
        usage: UsageRecorder | None = None,
        inbox: RpcClient | None = None,
        hit_price: int = 0,
        stream_ack_timeout_s: float = 10.0,
        conversations: Conversations | None = None,
    ) -> None:
        self._failover = failover
        self._catalog = catalog
        self._accounts = Accounts(credits=credits, costs=costs, usage=usage)
        self._cache = cache
        self._inbox = inbox
        self._hit_price = hit_price
        self._ack_timeout_s = stream_ack_timeout_s
        self._conversations = conversations
        self._headroom = Headroom()

    async def complete_chat(self, envelope: Envelope[CompleteChat], stream: ReplyStream) -> ChatCompletion:
        if envelope.payload.thread_id is None or self._conversations is None:
            return await self._complete_chat(envelope, stream)
        with self._conversations.book.answer():
            return await self._complete_chat(envelope, stream)

    async def _complete_chat(self, envelope: Envelope[CompleteChat], stream: ReplyStream) -> ChatCompletion:
        if envelope.actor is None:
            raise Unauthenticated("a chat request needs an acting user")
        payload = envelope.payload
        model, max_tokens = self._catalog.resolve(payload.model, payload.max_tokens)
        conversation = None
        if payload.thread_id is not None:
            if self._conversations is None:
                raise ServiceUnavailable("conversations are not kept by this chat service")
            conversation = await self._conversations.open(
                thread_id=payload.thread_id,
                owner_id=envelope.actor.id,
                new=payload.messages,
                window=self._catalog.window(model),
                max_tokens=max_tokens,
            )
            _threadable(payload)
        job = Job(
            envelope=envelope,
            caller=Caller.of(envelope),
            request=ProviderRequest(
                messages=conversation.messages if conversation else tuple(payload.messages),
                model=model,
                temperature=payload.temperature,
                top_p=payload.top_p,
                max_tokens=max_tokens,
                tools=tuple(payload.tools),
                tool_choice=payload.tool_choice,
                response_format=payload.response_format,
                n=payload.n,
                stop=tuple(payload.stop),
                seed=payload.seed,
                presence_penalty=payload.presence_penalty,
                frequency_penalty=payload.frequency_penalty,
                end_user=payload.end_user,
            ),
            stream=stream,
            streaming=payload.stream and stream.active,
            started=time.perf_counter(),
            deadline=time.monotonic() + (envelope.seconds_left() or 0.0),
            conversation=conversation,
        )
        if job.streaming and self._inbox is not None:
            stream.listen(self._inbox)
        again = redelivered()  # its first delivery may have held, kept, cached or charged already
        if conversation is not None and self._conversations is not None:
            kept = await self._conversations.kept(conversation, envelope.message_id, look=again)
            if kept is not None:
                return await self._kept(job, kept)
        if self._cache is None or not cacheable(job.request):
            return await self._fresh(job, None)
        key = self._cache.key(job.request, user_id=job.user_id)
        # A redelivery answers afresh on its first delivery's hold: a stored answer (maybe that
        # delivery's own) would leave the hold unsettled, and its lead may be held by the dead.
        found = await self._cache.lead_or_wait(key, deadline=job.deadline, lookup=payload.use_cache and not again)
        if isinstance(found, CachedAnswer):
            return await self._hit(job, found)
        return await self._fresh(job, found)

    # -- a stored answer ------------------------------------------------------------------------------

    async def _hit(self, job: Job, cached: CachedAnswer) -> ChatCompletion:
        answer = cached.answer
        reservation = await self._accounts.reserve(job, self._hit_price) if self._hit_price else None
        if not job.streaming:
            await self._accounts.conclude(
                job, reservation, cached.provider, answer, cached=True, charge=self._hit_price, turn_text=_text(answer)
            )
            return completion(job, cached.provider, answer, cached=True, credits=self._hit_price)
        out = await self._replay(job, cached.provider, answer, cached=True)
        delivered = _delivered_any(out)
        charge = self._hit_price if delivered else 0
        await self._accounts.conclude(
            job,
            reservation,
            cached.provider,
            answer,
            cached=True,
            charge=charge if delivered else None,
            turn_text=_delivered(out),
        )
        return streamed_completion(job, cached.provider, answer.model, out, cached=True, credits=charge)

    # -- a redelivery whose turn was kept --------------------------------------------------------------

    async def _kept(self, job: Job, turn: TurnDoc) -> ChatCompletion:
        """A threaded request whose first delivery kept its turn before its replica went: answered
        with that turn. Its hold (the same id: the ledger returns the first one) is charged the
        turn's credits if the first delivery did not get to commit it; nothing is recorded again."""
        reservation = await self._accounts.reserve(
            job, self._catalog.reservation(job.request, prompt_tokens=job.prompt_tokens)
        )
        if reservation.status == "pending":
            await self._accounts.settle(job, reservation, charge=turn["credits"])
        elif reservation.status != "committed":
            log.warning(
                "a kept turn's hold ended uncharged",
                extra={"reservation_id": str(reservation.reservation_id), "status": reservation.status},
            )
        answer = ProviderAnswer(
            text=turn["messages"][-1]["content"],
            model=turn["model"],
            prompt_tokens=turn["promptTokens"],
            completion_tokens=turn["completionTokens"],
        )
        if not job.streaming:
            return completion(job, turn["provider"], answer, cached=False, credits=turn["credits"])
        out = await self._replay(job, turn["provider"], answer, cached=False)
        return streamed_completion(job, turn["provider"], answer.model, out, cached=False, credits=turn["credits"])

    async def _replay(self, job: Job, provider: str, answer: ProviderAnswer, *, cached: bool) -> Pumped:
        """Stream an answer already made (stored, or kept in the thread) to the requester."""
        return await pump(
            replay(answer),
            job.stream,
            provider=provider,
            model=answer.model,
            cached=cached,
            deadline=job.deadline,
            idle_timeout_s=self._failover.policy.attempt_timeout_s,
            ack_timeout_s=self._ack_timeout_s,
        )

    # -- a provider's answer --------------------------------------------------------------------------

    async def _fresh(self, job: Job, lead: Lead | None) -> ChatCompletion:
        """Hold the credits, then ask the providers. When the user's last reservation left this
        request's hold available, the provider call starts while the hold is being written (see
        `chat.headroom`): once the broker has the hold's command, so that the call's work does
        not hold up its sending; either way the answer goes out only once the hold is durable."""
        hold = self._catalog.reservation(job.request, prompt_tokens=job.prompt_tokens)
        early = None
        handed = asyncio.Event()
        if not job.streaming and self._headroom.covers(job.user_id, hold, message_id=job.envelope.message_id):
            early = asyncio.create_task(self._complete_after(handed, job))
        try:
            reservation = await self._reserve(job, hold, sent=handed.set)
        except BaseException:
            if early is not None:
                await _discard(early)
            if lead is not None:
                await lead.abandon()
            raise
        if job.streaming:
            return await self._fresh_stream(job, lead, reservation)
        try:
            if early is not None:
                metrics.EARLY_CALLS.labels("used").inc()
                provider, answer = await early
            else:
                provider, answer = await self._failover.complete(job.request, deadline=job.deadline, user=job.user_id)
        except BaseException as exc:
            if early is not None and not early.done():
                await _discard(early)
            await self._accounts.settle(job, reservation, charge=None)
            await _end(lead, exc)
            raise
        if lead is not None:
            await lead.fill(CachedAnswer(provider.name, answer))  # followers go on while we settle
        if job.envelope.expired():
            await self._accounts.settle(job, reservation, charge=None)
            raise DeadlineExceeded("the answer came after the requester had gone")
        usage = usage_of(answer)
        charge = self._catalog.charge(job.request, total_tokens=usage.total_tokens, reserved=reservation.amount)
        await self._accounts.conclude(
            job, reservation, provider.name, answer, cached=False, charge=charge, turn_text=_text(answer)
        )
        return completion(job, provider.name, answer, cached=False, credits=charge)

    async def _complete_after(self, handed: asyncio.Event, job: Job) -> tuple[ChatProvider, ProviderAnswer]:
        await handed.wait()
        return await self._failover.complete(job.request, deadline=job.deadline, user=job.user_id)

    async def _reserve(self, job: Job, amount: int, *, sent: Sent | None = None) -> Reservation:
        try:
            reservation = await self._accounts.reserve(job, amount, sent=sent)
        except Exception:  # refused, or the ledger unreachable: the next request waits for its hold
            self._headroom.refused(job.user_id)
            raise
        finally:
            if sent is not None:
                sent()  # whatever became of the send, nothing waits for it any longer
        self._headroom.saw(reservation.balance)
        if reservation.status != "pending":  # an earlier delivery of this request settled it
            raise settled_before(reservation, redelivered=redelivered())
        return reservation

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
        delivered = _delivered_any(out)
        if delivered:
            usage = delivered_usage(out, job.request.messages)
            charge = self._catalog.charge(job.request, total_tokens=usage.total_tokens, reserved=reservation.amount)
        produced = produced_usage(out, job.request.messages)
        answer = out.answer or ProviderAnswer(
            text="".join(out.sent),
            model=provider.model_for(job.request.model),
            prompt_tokens=produced.prompt_tokens,
            completion_tokens=produced.completion_tokens,
            finish_reason=out.finish,
        )
        await self._accounts.conclude(
            job,
            reservation,
            provider.name,
            answer,
            cached=False,
            charge=charge if delivered else None,
            turn_text=_delivered(out),
        )
        return streamed_completion(job, provider.name, answer.model, out, cached=False, credits=charge)


# What a threaded request cannot carry: a thread keeps text turns with one answer each.
_NOT_THREADED: dict[str, Callable[[CompleteChat], bool]] = {
    "tools": lambda p: bool(p.tools),
    "n": lambda p: p.n > 1,
    "messages": lambda p: any(m.images or m.tool_calls or m.role == "tool" for m in p.messages),
}


def _threadable(payload: CompleteChat) -> None:
    for field, present in _NOT_THREADED.items():
        if present(payload):
            raise BadRequest(
                f"`{field}`: a thread keeps text turns, so a threaded request cannot carry tools, tool calls "
                "or results, images or n > 1",
                errors=[{"field": f"body.{field}", "message": "not supported with thread_id", "type": "value_error"}],
            )


def _delivered_any(out: Pumped) -> bool:
    """Whether the requester got anything: text chunks, or an answer of tool calls only (which its reply carries)."""
    return out.delivered > 0 or (out.complete and out.answer is not None and not out.sent and out.answer.said)


def _text(answer: ProviderAnswer) -> str:
    """An answer's text as its reply carries it (and its thread keeps it)."""
    return fitted(answer.text, answer.finish_reason)[0]


def _delivered(out: Pumped) -> str | None:
    """What a stream's requester got, when the reply will be an answer rather than an error."""
    if out.error is not None or not out.delivered_text:
        return None
    return fitted(out.delivered_text, out.finish)[0]


async def _discard(call: asyncio.Task[object]) -> None:
    """A provider call started early for a request whose hold was not made: its answer, if any,
    is thrown away (counted, since the provider may have charged us for it)."""
    call.cancel()
    await asyncio.wait([call])
    metrics.EARLY_CALLS.labels("discarded").inc()
    if not call.cancelled():
        call.exception()  # retrieved: nobody else will


async def _end(lead: Lead | None, exc: BaseException) -> None:
    """A leader that got no answer: share a provider verdict with its followers, else let one take over."""
    if lead is None:
        return
    if isinstance(exc, UpstreamFailed | ServiceUnavailable):
        await lead.fail(exc)
    else:
        await lead.abandon()
