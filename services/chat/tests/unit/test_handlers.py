from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from chat.breaker import CircuitBreaker
from chat.catalog import ModelCatalog
from chat.credit_prices import ModelPrice
from chat.failover import Failover, RetryPolicy
from chat.handlers import ChatHandlers
from chat.provider_costs import CostTable, UsdPrice
from chat.providers import ChatProvider, LocalProvider, ProviderRequest
from common.bus import ReplyStream, Sent
from common.contracts import Caller, ChatMessage, CompleteChat, Envelope, Reservation
from common.contracts.chat import MAX_CONTENT_CHARS
from common.errors import InsufficientCredits, NotFound, UpstreamFailed
from tests.support.chat_fakes import ACTOR, FakeCredits, ScriptedProvider, failure
from tests.support.waiting import wait_until

pytestmark = pytest.mark.unit

NO_STREAM = ReplyStream(None, reply_to=None, correlation_id=None)


def envelope(
    *messages: tuple[str, str], model: str | None = None, max_tokens: int | None = None
) -> Envelope[CompleteChat]:
    return Envelope[CompleteChat](
        type="CompleteChat", request_id="r", message_id=uuid.uuid4(), actor=ACTOR,
        deadline=datetime.now(UTC) + timedelta(seconds=30),
        payload=CompleteChat(
            messages=[ChatMessage(role=r, content=c) for r, c in messages], model=model, max_tokens=max_tokens  # type: ignore[arg-type]
        ),
    )  # fmt: skip


def handlers(
    credits: FakeCredits,
    *providers: ChatProvider,
    price: ModelPrice | None = None,
    prices: dict[str, ModelPrice] | None = None,
    usd: CostTable | None = None,
) -> ChatHandlers:
    chain: list[ChatProvider] = list(providers or [LocalProvider()])
    failover = Failover(
        chain,
        policy=RetryPolicy(attempts=1, backoff_s=0, attempt_timeout_s=1),
        breaker=lambda: CircuitBreaker(failures=5, cooldown_s=30),
    )
    costs = usd or CostTable({p.default_model: UsdPrice(input_per_1m=1, output_per_1m=1) for p in chain})
    catalog = ModelCatalog.build(
        chain,
        default_model=None,
        default_price=price or ModelPrice(per_request=2),
        prices=prices or {},
        costs=costs,
    )
    return ChatHandlers(failover=failover, catalog=catalog, credits=credits, costs=costs)


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


async def test_token_pricing_reserves_the_worst_case_and_commits_the_usage() -> None:
    credits = FakeCredits()
    big = {"big": ModelPrice(per_request=1, per_1k_tokens=10, max_tokens=2000)}
    reply = await handlers(credits, prices=big).complete_chat(envelope(("user", "hi"), model="big"), NO_STREAM)
    # The prompt at a token per byte plus framing (2 + 8 + 8), the answer at its cap: 10 x 2018 / 1000 → 21.
    assert credits.calls[0] == ("reserve", 1 + 21)
    assert credits.calls[1] == ("commit", 1 + 1)  # a few tokens round up to one credit
    assert reply.model == "big"


async def test_a_long_prompt_is_reserved_in_full_before_the_provider_is_called() -> None:
    credits = FakeCredits(available=10_000)
    provider = ScriptedProvider("p")
    per_token = ModelPrice(per_request=0, per_1k_tokens=1000, max_tokens=50)  # a credit a token
    prompt = "word " * 1000
    await handlers(credits, provider, price=per_token).complete_chat(envelope(("user", prompt)), NO_STREAM)
    assert credits.calls[0] == ("reserve", len(prompt) + 8 + 8 + 50)
    assert provider.calls[0].max_tokens == 50  # no max_tokens asked: sent with the priced cap


async def test_an_unpriced_model_is_refused_before_anything_happens() -> None:
    credits = FakeCredits()
    openai = ScriptedProvider("openai", prefixes=("gpt-",))
    chat = handlers(credits, openai, prices={"gpt-4o": ModelPrice(max_tokens=1000)})
    with pytest.raises(NotFound) as unknown:  # as OpenAI answers an unknown model
        await chat.complete_chat(envelope(("user", "hi"), model="gpt-4.5-preview"), NO_STREAM)
    assert "openai-default, gpt-4o" in unknown.value.detail
    assert credits.calls == [] and openai.calls == []


async def test_max_tokens_over_the_cap_is_sent_at_the_cap_and_held_at_the_cap() -> None:
    credits = FakeCredits()
    openai = ScriptedProvider("openai", prefixes=("gpt-",))
    per_token = ModelPrice(per_request=0, per_1k_tokens=1000, max_tokens=50)
    chat = handlers(credits, openai, prices={"gpt-4o": per_token})
    await chat.complete_chat(envelope(("user", "hi"), model="gpt-4o", max_tokens=1001), NO_STREAM)
    assert openai.calls[0].max_tokens == 50
    assert credits.calls[0] == ("reserve", len("hi") + 8 + 8 + 50)


async def test_the_reply_names_the_provider_and_model_that_answered() -> None:
    credits = FakeCredits()
    first, second = ScriptedProvider("gemini", [failure("gemini", 500)]), ScriptedProvider("openai")
    reply = await handlers(credits, first, second).complete_chat(envelope(("user", "hi")), NO_STREAM)
    assert (reply.provider, reply.model, reply.message.content) == ("openai", "openai-default", "openai: fine")


async def test_an_answer_longer_than_a_message_is_delivered_cut_and_said_to_be() -> None:
    credits = FakeCredits()
    provider = ScriptedProvider("p", ["x" * (MAX_CONTENT_CHARS + 10)])
    reply = await handlers(credits, provider).complete_chat(envelope(("user", "hi")), NO_STREAM)
    assert len(reply.message.content) == MAX_CONTENT_CHARS and reply.finish_reason == "length"
    assert credits.calls == [("reserve", 2), ("commit", 2)]


async def test_same_conversation_same_answer() -> None:
    provider = LocalProvider()
    request = ProviderRequest(messages=(ChatMessage(role="user", content="repeat me"),), model="m")
    assert await provider.complete(request) == await provider.complete(request)


class GatedCredits(FakeCredits):
    """Holds are made only while `open` is set, so a test can see what happens while one is written;
    and their commands reach the broker only while `delivered` is set."""

    def __init__(self, available: int = 100) -> None:
        super().__init__(available)
        self.open = asyncio.Event()
        self.open.set()
        self.delivered = asyncio.Event()
        self.delivered.set()
        self.holding = 0

    async def reserve(
        self, caller: Caller, *, reservation_id: uuid.UUID, amount: int, purpose: str, sent: Sent | None = None
    ) -> Reservation:
        self.holding += 1
        try:
            await self.delivered.wait()
            if sent is not None:
                sent()  # the command is with the broker; its hold is written once `open` is set
            await self.open.wait()
            return await super().reserve(caller, reservation_id=reservation_id, amount=amount, purpose=purpose)
        finally:
            self.holding -= 1


async def until(condition: Callable[[], bool]) -> None:
    async def now() -> bool:
        return condition()

    await wait_until(now, bool, within=2, interval=0)


async def test_a_users_first_request_calls_the_provider_only_once_its_hold_is_made() -> None:
    credits, provider = GatedCredits(), ScriptedProvider("p")
    credits.open.clear()
    asked = asyncio.create_task(handlers(credits, provider).complete_chat(envelope(("user", "hi")), NO_STREAM))
    await until(lambda: credits.holding == 1)
    for _ in range(10):
        await asyncio.sleep(0)
    assert provider.calls == []
    credits.open.set()
    assert (await asked).credits == 2 and len(provider.calls) == 1


async def test_with_headroom_the_provider_call_starts_while_the_hold_is_written_and_the_answer_waits_for_it() -> None:
    credits, provider = GatedCredits(), ScriptedProvider("p")
    chat = handlers(credits, provider)
    await chat.complete_chat(envelope(("user", "first")), NO_STREAM)
    credits.open.clear()
    asked = asyncio.create_task(chat.complete_chat(envelope(("user", "second")), NO_STREAM))
    await until(lambda: len(provider.calls) == 2 and credits.holding == 1)
    for _ in range(10):
        await asyncio.sleep(0)
    assert not asked.done()  # answered by the provider, yet not released before its hold exists
    credits.open.set()
    reply = await asked
    assert reply.credits == 2 and credits.calls[-2:] == [("reserve", 2), ("commit", 2)]


async def test_with_headroom_the_provider_call_starts_once_the_broker_has_the_holds_command() -> None:
    credits, provider = GatedCredits(), ScriptedProvider("p")
    chat = handlers(credits, provider)
    await chat.complete_chat(envelope(("user", "first")), NO_STREAM)
    credits.open.clear()
    credits.delivered.clear()
    asked = asyncio.create_task(chat.complete_chat(envelope(("user", "second")), NO_STREAM))
    await until(lambda: credits.holding == 1)
    for _ in range(10):
        await asyncio.sleep(0)
    assert len(provider.calls) == 1  # the hold's command is still on its way: the call does not compete with it
    credits.delivered.set()
    await until(lambda: len(provider.calls) == 2)  # then it starts, while the hold is written
    assert not asked.done()
    credits.open.set()
    assert (await asked).credits == 2


async def test_an_early_answer_whose_hold_is_refused_is_thrown_away_and_the_next_request_waits() -> None:
    credits, provider = GatedCredits(), ScriptedProvider("p")
    chat = handlers(credits, provider)
    await chat.complete_chat(envelope(("user", "first")), NO_STREAM)
    credits.available = 1  # spent elsewhere meanwhile (say, an image job)
    discarded = REGISTRY.get_sample_value("aisaas_chat_early_calls_total", {"outcome": "discarded"}) or 0.0

    credits.open.clear()
    asked = asyncio.create_task(chat.complete_chat(envelope(("user", "second")), NO_STREAM))
    await until(lambda: len(provider.calls) == 2)  # started early...
    credits.open.set()
    with pytest.raises(InsufficientCredits):
        await asked  # ...and thrown away
    assert REGISTRY.get_sample_value("aisaas_chat_early_calls_total", {"outcome": "discarded"}) == discarded + 1
    assert credits.calls == [("reserve", 2), ("commit", 2)] and credits.available == 1

    with pytest.raises(InsufficientCredits):
        await chat.complete_chat(envelope(("user", "third")), NO_STREAM)
    assert len(provider.calls) == 2  # after a refusal, the hold comes first again
