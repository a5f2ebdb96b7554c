from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from chat.breaker import CircuitBreaker
from chat.costs import CostTable
from chat.failover import Failover, RetryPolicy
from chat.handlers import ChatHandlers
from chat.pricing import ChatPricing, ModelPrice
from chat.providers import LocalProvider, ProviderRequest
from common.bus import ReplyStream
from common.contracts import ChatMessage, CompleteChat, Envelope, ListModels
from common.errors import InsufficientCredits, UpstreamFailed
from tests.support.chat_fakes import ACTOR, FakeCredits, ScriptedProvider, failure

pytestmark = pytest.mark.unit

NO_STREAM = ReplyStream(None, reply_to=None, correlation_id=None)


def envelope(*messages: tuple[str, str], model: str | None = None) -> Envelope[CompleteChat]:
    return Envelope[CompleteChat](
        type="CompleteChat", request_id="r", message_id=uuid.uuid4(), actor=ACTOR,
        deadline=datetime.now(UTC) + timedelta(seconds=30),
        payload=CompleteChat(messages=[ChatMessage(role=r, content=c) for r, c in messages], model=model),  # type: ignore[arg-type]
    )  # fmt: skip


def handlers(credits: FakeCredits, *providers: object, pricing: ChatPricing | None = None) -> ChatHandlers:
    failover = Failover(
        list(providers or [LocalProvider()]),  # type: ignore[arg-type]
        policy=RetryPolicy(attempts=1, backoff_s=0, attempt_timeout_s=1),
        breaker=lambda: CircuitBreaker(failures=5, cooldown_s=30),
    )
    return ChatHandlers(
        failover=failover,
        default_model="local-echo-1",
        pricing=pricing or ChatPricing(default=ModelPrice(per_request=2), by_model={}),
        credits=credits,  # type: ignore[arg-type]
        costs=CostTable({}),
    )


async def test_answer_is_reserved_then_committed() -> None:
    credits = FakeCredits()
    conversation = [
        ("system", "be brief"),
        ("user", "What is RabbitMQ?"),
        ("assistant", "A broker."),
        ("user", "And Redis?"),
    ]
    reply = await handlers(credits).complete_chat(envelope(*conversation), NO_STREAM)
    assert "And Redis?" in reply.message.content and "RabbitMQ" not in reply.message.content
    assert (reply.provider, reply.model, reply.message.role, reply.cached) == (
        "local",
        "local-echo-1",
        "assistant",
        False,
    )
    assert reply.usage.prompt_tokens == 2 + 3 + 2 + 2
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert credits.calls == [("reserve", 2), ("commit", 2)] and reply.credits == 2


async def test_provider_failure_releases_and_charges_nothing() -> None:
    credits = FakeCredits()
    broken = ScriptedProvider("broken", [failure("broken", 503)])
    with pytest.raises(UpstreamFailed) as caught:
        await handlers(credits, broken).complete_chat(envelope(("user", "hi")), NO_STREAM)
    assert credits.calls == [("reserve", 2), ("release", 2)]
    assert credits.available == 100
    assert caught.value.extra["attempts"] == ["broken: HTTP 503"]


async def test_insufficient_credits_never_calls_the_provider() -> None:
    credits = FakeCredits(available=1)
    provider = ScriptedProvider("p")
    with pytest.raises(InsufficientCredits):
        await handlers(credits, provider).complete_chat(envelope(("user", "hi")), NO_STREAM)
    assert credits.calls == [] and provider.calls == []


async def test_token_pricing_reserves_the_maximum_and_commits_the_usage() -> None:
    credits = FakeCredits()
    pricing = ChatPricing(
        default=ModelPrice(), by_model={"big": ModelPrice(per_request=1, per_1k_tokens=10, max_tokens=2000)}
    )
    reply = await handlers(credits, pricing=pricing).complete_chat(envelope(("user", "hi"), model="big"), NO_STREAM)
    assert credits.calls[0] == ("reserve", 1 + 20)
    assert credits.calls[1] == ("commit", 1 + 1)  # a few tokens round up to one credit
    assert reply.model == "big"


async def test_the_reply_names_the_provider_and_model_that_answered() -> None:
    credits = FakeCredits()
    first, second = ScriptedProvider("gemini", [failure("gemini", 500)]), ScriptedProvider("openai")
    reply = await handlers(credits, first, second).complete_chat(envelope(("user", "hi"), model="gemini-x"), NO_STREAM)
    assert (reply.provider, reply.model, reply.message.content) == ("openai", "openai-default", "openai: fine")


async def test_models_are_listed_in_failover_order() -> None:
    openai = ScriptedProvider("openai", prefixes=("gpt-",))
    listed = await handlers(FakeCredits(), ScriptedProvider("gemini"), openai).list_models(
        Envelope[ListModels](type="ListModels", request_id="r", payload=ListModels())
    )
    providers = [m.provider for m in listed.models]
    assert providers == sorted(providers, key=["gemini", "openai"].index)  # Gemini's first, then OpenAI's
    gemini = [m.id for m in listed.models if m.provider == "gemini"]
    assert gemini[0] == "gemini-default" and "gemini-2.5-flash" in gemini  # its default, then the priced ones
    assert "gpt-4o-mini" in [m.id for m in listed.models if m.provider == "openai"]
    assert listed.default == "local-echo-1"


async def test_same_conversation_same_answer() -> None:
    provider = LocalProvider()
    request = ProviderRequest(messages=(ChatMessage(role="user", content="repeat me"),), model="m")
    assert await provider.complete(request) == await provider.complete(request)
