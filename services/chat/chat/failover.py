"""Which provider answers: the request's model's owner first, then the others in the configured
order (Gemini, then OpenAI). Each provider gets a share of the time left before the deadline,
so a hanging first provider cannot use up the fallback's time; each attempt has its own
timeout inside that share; only retryable failures (429, 5xx, timeouts, dropped connections,
malformed bodies) are retried, with exponential backoff and jitter (tenacity); a provider
whose circuit breaker is open is skipped. A timeout counts towards a breaker once per user
(`user`): it may be the request's own doing (see `chat.breaker`).

All providers failed → UpstreamFailed (502); none could even be tried because every breaker
is open → ServiceUnavailable (503) with `retry_after`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from chat import metrics
from chat.breaker import CircuitBreaker
from chat.providers.base import ChatProvider, ProviderAnswer, ProviderError, ProviderRequest, ProviderStream
from common import telemetry
from common.errors import ServiceUnavailable, UpstreamFailed

log = logging.getLogger(__name__)
tracer = trace.get_tracer("chat.providers")

MIN_ATTEMPT_S = 0.05


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 2
    backoff_s: float = 0.2
    backoff_max_s: float = 2.0
    attempt_timeout_s: float = 10.0


class Routed(Protocol):
    """What failover needs of a provider: its name (its breaker's), the models it owns, the model
    it answers a request with, and closing it. Chat and embedding providers both are."""

    name: str

    def owns(self, model: str) -> bool: ...

    def model_for(self, requested: str) -> str: ...

    async def aclose(self) -> None: ...


class ModelRequest(Protocol):
    """A request naming its model: a dataclass, so each provider gets a copy with its own model."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def model(self) -> str: ...


type Attempt[P, Q, T] = Callable[[P, Q, float], Awaitable[T]]


class ProviderFailover[P: Routed, Q: ModelRequest]:
    """The order, time shares, retries and breakers, for any kind of provider and request."""

    def __init__(
        self,
        providers: Sequence[P],
        *,
        policy: RetryPolicy,
        breaker: Callable[[], CircuitBreaker],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not providers:
            raise ValueError("at least one provider is needed")
        self.providers = list(providers)
        self.policy = policy
        self.breakers = {p.name: breaker() for p in self.providers}
        self._clock = clock

    def order(self, model: str) -> list[P]:
        owner = next((p for p in self.providers if p.owns(model)), None)
        return [owner, *(p for p in self.providers if p is not owner)] if owner else list(self.providers)

    async def aclose(self) -> None:
        for provider in self.providers:
            await provider.aclose()

    async def _run[T](self, request: Q, deadline: float, attempt: Attempt[P, Q, T], user: str | None) -> tuple[P, T]:
        candidates = self.order(request.model)
        failures: list[str] = []
        tried = False
        for position, provider in enumerate(candidates):
            breaker = self.breakers[provider.name]
            if not breaker.allow():
                failures.append(f"{provider.name}: circuit open")
                continue
            left = deadline - self._clock()
            if left <= MIN_ATTEMPT_S:
                breaker.ended_without_verdict()
                failures.append(f"{provider.name}: no time left")
                break
            later = sum(1 for p in candidates[position + 1 :] if self.breakers[p.name].state != "open")
            budget_end = self._clock() + left / (later + 1)
            req = replace(request, model=provider.model_for(request.model))
            tried = True
            try:
                return provider, await self._attempts(provider, req, budget_end, attempt, breaker, user)
            except ProviderError as exc:
                log.warning(
                    "provider failed; trying the next",
                    extra={"provider": provider.name, "model": req.model, "error": exc.detail, "status": exc.status},
                )
                failures.append(str(exc))
                metrics.FALLBACKS.labels(provider.name).inc()
        if not tried:
            wait = min(self.breakers[p.name].retry_after() for p in candidates)
            raise ServiceUnavailable(
                "every provider is cooling down after failures", retry_after=round(wait, 1), attempts=failures
            )
        raise UpstreamFailed("no provider could answer", attempts=failures)

    async def _attempts[T](
        self,
        provider: P,
        request: Q,
        budget_end: float,
        attempt: Attempt[P, Q, T],
        breaker: CircuitBreaker,
        user: str | None,
    ) -> T:
        out_of_attempts = stop_after_attempt(self.policy.attempts)

        def stop(state: RetryCallState) -> bool:
            out_of_time = self._clock() + (state.upcoming_sleep or 0.0) >= budget_end - MIN_ATTEMPT_S
            return out_of_attempts(state) or out_of_time

        retrying = AsyncRetrying(
            stop=stop,
            wait=wait_exponential_jitter(
                initial=self.policy.backoff_s, max=self.policy.backoff_max_s, jitter=self.policy.backoff_s
            ),
            retry=retry_if_exception(lambda exc: isinstance(exc, ProviderError) and exc.retryable),
            reraise=True,
        )
        first = True
        async for trial in retrying:
            with trial:
                if not first and not breaker.allow():
                    raise ProviderError(provider.name, "circuit opened", retryable=False, counts=False)
                first = False
                timeout = min(self.policy.attempt_timeout_s, budget_end - self._clock())
                attributes = {"gen_ai.system": provider.name, "gen_ai.request.model": request.model}
                started = time.perf_counter()
                with telemetry.span(
                    tracer, f"chat {provider.name}", kind=SpanKind.CLIENT, attributes=attributes
                ) as span:
                    try:
                        result = await attempt(provider, request, timeout)
                    except TimeoutError:
                        breaker.failed(by=user)
                        self._observe(provider.name, "timeout", started, breaker, span)
                        raise ProviderError(
                            provider.name, f"no answer within {timeout:.2f}s", retryable=True, timed_out=True
                        ) from None
                    except ProviderError as exc:
                        if exc.counts:
                            breaker.failed(by=user if exc.timed_out else None)
                        else:
                            breaker.ended_without_verdict()
                        self._observe(provider.name, "error", started, breaker, span)
                        raise
                    except BaseException:
                        breaker.ended_without_verdict()
                        raise
                    breaker.succeeded()
                    self._observe(provider.name, "ok", started, breaker, span)
                    return result
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    @staticmethod
    def _observe(provider: str, outcome: str, started: float, breaker: CircuitBreaker, span: trace.Span) -> None:
        metrics.PROVIDER_CALLS.labels(provider, outcome).inc()
        metrics.PROVIDER_SECONDS.labels(provider).observe(time.perf_counter() - started)
        metrics.CIRCUIT.labels(provider).set(metrics.CIRCUIT_VALUE[breaker.state])
        if outcome != "ok":
            span.set_status(Status(StatusCode.ERROR, outcome))


class Failover(ProviderFailover[ChatProvider, ProviderRequest]):
    """Failover between chat providers: a whole answer, or a stream once it has begun."""

    async def complete(
        self, request: ProviderRequest, *, deadline: float, user: str | None = None
    ) -> tuple[ChatProvider, ProviderAnswer]:
        """The first answer any provider gives, trying them in order until `deadline` (monotonic);
        `user`: who asks, whose timeouts count once per breaker run."""

        async def attempt(provider: ChatProvider, req: ProviderRequest, limit_s: float) -> ProviderAnswer:
            async with asyncio.timeout(limit_s):
                return await provider.complete(req)

        return await self._run(request, deadline, attempt, user)

    async def open_stream(
        self, request: ProviderRequest, *, deadline: float, user: str | None = None
    ) -> tuple[ChatProvider, ProviderStream]:
        """A stream that has produced its first piece: failover happens only before that."""

        async def attempt(provider: ChatProvider, req: ProviderRequest, limit_s: float) -> ProviderStream:
            stream = provider.stream(req)
            try:
                async with asyncio.timeout(limit_s):
                    first = await anext(stream)
            except BaseException:
                await stream.aclose()
                raise
            return _prepend(first, stream)

        return await self._run(request, deadline, attempt, user)

    def stream_failed(self, provider: ChatProvider, *, user: str | None = None, timed_out: bool = False) -> None:
        """A stream broke after its first piece: the provider's failure, though too late to fail over
        (a stall may be the request's own doing: then it counts once per user)."""
        self.breakers[provider.name].failed(by=user if timed_out else None)


async def _prepend(first: str | ProviderAnswer, rest: ProviderStream) -> ProviderStream:
    try:
        yield first
        async for item in rest:
            yield item
    finally:
        await rest.aclose()
