from __future__ import annotations

import time

import pytest

from chat.breaker import CircuitBreaker
from chat.failover import Failover, RetryPolicy
from chat.providers import ProviderError, ProviderRequest
from common.contracts import ChatMessage
from common.errors import ServiceUnavailable, UpstreamFailed
from tests.support.chat_fakes import ScriptedProvider, failure

pytestmark = pytest.mark.unit

HI = (ChatMessage(role="user", content="hi"),)


def failover(
    *providers: ScriptedProvider, attempts: int = 2, attempt_timeout_s: float = 1.0, failures: int = 5
) -> Failover:
    return Failover(
        list(providers),
        policy=RetryPolicy(attempts=attempts, backoff_s=0.01, backoff_max_s=0.02, attempt_timeout_s=attempt_timeout_s),
        breaker=lambda: CircuitBreaker(failures=failures, cooldown_s=60),
    )


def request(model: str = "gemini-2.5-flash") -> ProviderRequest:
    return ProviderRequest(messages=HI, model=model)


def soon(seconds: float = 5.0) -> float:
    return time.monotonic() + seconds


async def test_retryable_failures_are_retried_then_the_next_provider_answers() -> None:
    gemini = ScriptedProvider("gemini", [failure("gemini", 503), failure("gemini", 429)])
    openai = ScriptedProvider("openai")
    provider, answer = await failover(gemini, openai).complete(request(), deadline=soon())
    assert (provider.name, answer.text) == ("openai", "openai: fine")
    assert len(gemini.calls) == 2 and len(openai.calls) == 1
    assert openai.calls[0].model == "openai-default"  # the fallback answers with its own model


async def test_a_retry_that_succeeds_stays_with_the_first_provider() -> None:
    gemini = ScriptedProvider("gemini", [failure("gemini", 500)])
    provider, _ = await failover(gemini, ScriptedProvider("openai")).complete(request(), deadline=soon())
    assert provider.name == "gemini" and len(gemini.calls) == 2


async def test_non_retryable_failures_fail_over_at_once() -> None:
    gemini = ScriptedProvider("gemini", [failure("gemini", 400)])
    provider, _ = await failover(gemini, ScriptedProvider("openai")).complete(request(), deadline=soon())
    assert provider.name == "openai" and len(gemini.calls) == 1


async def test_a_hanging_provider_is_cut_by_the_attempt_timeout_and_the_fallback_answers_in_time() -> None:
    gemini = ScriptedProvider("gemini", [30.0, 30.0])
    started = time.monotonic()
    provider, _ = await failover(gemini, ScriptedProvider("openai"), attempt_timeout_s=0.2).complete(
        request(), deadline=soon(3)
    )
    assert provider.name == "openai"
    assert time.monotonic() - started < 1.0  # two 0.2 s attempts and a short backoff


async def test_a_hang_longer_than_its_share_of_the_deadline_leaves_time_for_the_fallback() -> None:
    gemini = ScriptedProvider("gemini", [30.0, 30.0])
    started = time.monotonic()
    provider, _ = await failover(gemini, ScriptedProvider("openai"), attempt_timeout_s=60).complete(
        request(), deadline=soon(1.0)
    )
    assert provider.name == "openai" and time.monotonic() - started < 1.0


async def test_the_owner_of_the_requested_model_goes_first() -> None:
    gemini, openai = ScriptedProvider("gemini"), ScriptedProvider("openai", prefixes=("gpt-",))
    provider, _ = await failover(gemini, openai).complete(request("gpt-4o"), deadline=soon())
    assert provider.name == "openai" and openai.calls[0].model == "gpt-4o" and not gemini.calls


async def test_all_failing_is_upstream_failed_naming_each_attempt() -> None:
    gemini = ScriptedProvider("gemini", [failure("gemini", 503)] * 2)
    openai = ScriptedProvider("openai", [failure("openai", 500)] * 2)
    with pytest.raises(UpstreamFailed) as caught:
        await failover(gemini, openai).complete(request(), deadline=soon())
    assert caught.value.extra["attempts"] == ["gemini: HTTP 503", "openai: HTTP 500"]


async def test_an_open_breaker_skips_its_provider_and_all_open_is_service_unavailable() -> None:
    gemini = ScriptedProvider("gemini", [failure("gemini", 503)] * 10)
    openai = ScriptedProvider("openai", [failure("openai", 503)] * 10)
    f = failover(gemini, openai, attempts=1, failures=2)
    for _ in range(2):
        with pytest.raises(UpstreamFailed):
            await f.complete(request(), deadline=soon())
    assert (len(gemini.calls), len(openai.calls)) == (2, 2)
    with pytest.raises(ServiceUnavailable) as caught:
        await f.complete(request(), deadline=soon())
    assert (len(gemini.calls), len(openai.calls)) == (2, 2)  # neither was called
    assert 0 < caught.value.extra["retry_after"] <= 60


async def test_a_stream_fails_over_before_its_first_piece() -> None:
    gemini = ScriptedProvider("gemini", [ProviderError("gemini", "malformed reply", retryable=True)] * 2)
    provider, stream = await failover(gemini, ScriptedProvider("openai")).open_stream(request(), deadline=soon())
    items = [item async for item in stream]
    assert provider.name == "openai"
    assert "".join(i for i in items if isinstance(i, str)) == "openai: fine"
