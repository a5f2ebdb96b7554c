from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from chat.handlers import ChatHandlers
from chat.pricing import ChatPricing, ModelPrice
from chat.providers import LocalProvider
from chat.providers.base import ProviderAnswer
from common.contracts import (
    Actor,
    Balance,
    Caller,
    ChatMessage,
    CompleteChat,
    Envelope,
    Reservation,
    ReservationResolved,
)
from common.errors import InsufficientCredits, UpstreamFailed

pytestmark = pytest.mark.unit

ACTOR = Actor(id="u1", email="u1@example.com", role="user")


class FakeCredits:
    """Implements the CreditsClient interface in memory, recording what the handler asked."""

    def __init__(self, available: int = 100) -> None:
        self.available = available
        self.calls: list[tuple[str, int]] = []

    async def reserve(self, caller: Caller, *, reservation_id: uuid.UUID, amount: int, purpose: str) -> Reservation:
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

    async def commit(self, caller: Caller, reservation: Reservation, *, amount: int) -> ReservationResolved:
        self.calls.append(("commit", amount))
        self.available += reservation.amount - amount
        return self._resolved(reservation, "committed", amount)

    async def release(self, caller: Caller, reservation: Reservation) -> ReservationResolved:
        self.calls.append(("release", reservation.amount))
        self.available += reservation.amount
        return self._resolved(reservation, "released", 0)

    @staticmethod
    def _resolved(reservation: Reservation, status: str, committed: int) -> ReservationResolved:
        return ReservationResolved(
            reservation_id=reservation.reservation_id,
            status=status,  # type: ignore[arg-type]
            committed=committed,
            released=reservation.amount - committed,
            balance=reservation.balance,
        )


class FailingProvider:
    name = "broken"

    async def complete(self, messages: list[ChatMessage], *, model: str) -> ProviderAnswer:
        raise UpstreamFailed("provider down")


def envelope(*messages: tuple[str, str], model: str | None = None) -> Envelope[CompleteChat]:
    return Envelope[CompleteChat](
        type="CompleteChat", request_id="r", message_id=uuid.uuid4(), actor=ACTOR,
        deadline=datetime.now(UTC) + timedelta(seconds=30),
        payload=CompleteChat(messages=[ChatMessage(role=r, content=c) for r, c in messages], model=model),  # type: ignore[arg-type]
    )  # fmt: skip


def handlers(credits: FakeCredits, provider: object = None, pricing: ChatPricing | None = None) -> ChatHandlers:
    return ChatHandlers(
        provider=provider or LocalProvider(),  # type: ignore[arg-type]
        default_model="local-echo-1",
        pricing=pricing or ChatPricing(default=ModelPrice(per_request=2), by_model={}),
        credits=credits,  # type: ignore[arg-type]
    )


async def test_answer_is_reserved_then_committed() -> None:
    credits = FakeCredits()
    reply = await handlers(credits).complete_chat(
        envelope(
            ("system", "be brief"), ("user", "What is RabbitMQ?"), ("assistant", "A broker."), ("user", "And Redis?")
        )
    )
    assert "And Redis?" in reply.message.content and "RabbitMQ" not in reply.message.content
    assert (reply.provider, reply.model, reply.message.role, reply.cached) == (
        "local",
        "local-echo-1",
        "assistant",
        False,
    )
    assert reply.usage.prompt_tokens == 2 + 3 + 2 + 2
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert credits.calls == [("reserve", 2), ("commit", 2)]


async def test_provider_failure_releases_and_charges_nothing() -> None:
    credits = FakeCredits()
    with pytest.raises(UpstreamFailed):
        await handlers(credits, provider=FailingProvider()).complete_chat(envelope(("user", "hi")))
    assert credits.calls == [("reserve", 2), ("release", 2)]
    assert credits.available == 100


async def test_insufficient_credits_never_calls_the_provider() -> None:
    credits = FakeCredits(available=1)
    with pytest.raises(InsufficientCredits):
        await handlers(credits, provider=FailingProvider()).complete_chat(envelope(("user", "hi")))
    assert credits.calls == []


async def test_token_pricing_reserves_the_maximum_and_commits_the_usage() -> None:
    credits = FakeCredits()
    pricing = ChatPricing(
        default=ModelPrice(), by_model={"big": ModelPrice(per_request=1, per_1k_tokens=10, max_tokens=2000)}
    )
    reply = await handlers(credits, pricing=pricing).complete_chat(envelope(("user", "hi"), model="big"))
    assert credits.calls[0] == ("reserve", 1 + 20)
    assert credits.calls[1] == ("commit", 1 + 1)  # a few tokens round up to one credit
    assert reply.model == "big"


async def test_same_conversation_same_answer() -> None:
    provider = LocalProvider()
    messages = [ChatMessage(role="user", content="repeat me")]
    assert await provider.complete(messages, model="m") == await provider.complete(messages, model="m")
