"""CreateEmbeddings through the handler: held for the worst case, charged for the tokens used,
released on any failure, never sent to another provider's model."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest

from chat.breaker import CircuitBreaker
from chat.credit_prices import ModelPrice
from chat.embedding_catalog import EmbeddingCatalog
from chat.embedding_failover import EmbeddingFailover
from chat.embeddings import EmbeddingHandlers
from chat.failover import RetryPolicy
from chat.provider_costs import CostTable, UsdPrice
from chat.providers.base import ProviderError
from chat.providers.embedding import EmbeddingAnswer, EmbeddingRequest, pack, unpack
from chat.providers.local_embeddings import LocalEmbeddings
from common.contracts import CreateEmbeddings, Envelope
from common.errors import BadRequest, InsufficientCredits, NotFound, ServiceUnavailable, UpstreamFailed
from tests.support.chat_fakes import ACTOR, FakeCredits, failure

pytestmark = pytest.mark.unit

PER_TOKEN = ModelPrice(per_request=0, per_1k_tokens=1000)  # one credit a token


class ScriptedEmbedder:
    """An embedding provider whose calls go as scripted: an error to raise, else vectors (3 tokens)."""

    def __init__(self, name: str, script: Iterable[ProviderError] = ()) -> None:
        self.name = name
        self.default_model = f"{name}-embed"
        self._script = list(script)
        self.calls: list[EmbeddingRequest] = []

    def owns(self, model: str) -> bool:
        return model.startswith(f"{self.name}-")

    def model_for(self, requested: str) -> str:
        return requested

    def max_dimensions(self, model: str) -> int | None:
        return 2

    async def embed(self, request: EmbeddingRequest) -> EmbeddingAnswer:
        self.calls.append(request)
        if self._script:
            raise self._script.pop(0)
        vectors = tuple(pack([1.0, 0.0]) for _ in request.inputs)
        return EmbeddingAnswer(vectors=vectors, model=request.model, prompt_tokens=3)

    async def aclose(self) -> None:
        return None


def envelope(*inputs: str, model: str, dimensions: int | None = None) -> Envelope[CreateEmbeddings]:
    return Envelope[CreateEmbeddings](
        type="CreateEmbeddings",
        request_id="r",
        message_id=uuid.uuid4(),
        actor=ACTOR,
        deadline=datetime.now(UTC) + timedelta(seconds=30),
        payload=CreateEmbeddings(input=list(inputs), model=model, dimensions=dimensions),
    )


def handlers(credits: FakeCredits, *providers: object, failures: int = 5) -> EmbeddingHandlers:
    chain = list(providers)
    failover = EmbeddingFailover(
        chain,  # type: ignore[arg-type]
        policy=RetryPolicy(attempts=2, backoff_s=0, attempt_timeout_s=1),
        breaker=lambda: CircuitBreaker(failures=failures, cooldown_s=30),
    )
    costs = CostTable({p.default_model: UsdPrice(input_per_1m=1, output_per_1m=0) for p in chain})  # type: ignore[attr-defined]
    catalog = EmbeddingCatalog.build(chain, default_price=PER_TOKEN, prices={}, costs=costs)  # type: ignore[arg-type]
    return EmbeddingHandlers(failover=failover, catalog=catalog, credits=credits, costs=costs)  # type: ignore[arg-type]


async def test_held_for_the_inputs_bytes_and_charged_for_the_tokens_used() -> None:
    credits = FakeCredits(available=1000)
    reply = await handlers(credits, ScriptedEmbedder("a")).create_embeddings(
        envelope("hello there", "héllo", model="a-embed")
    )

    assert credits.calls == [("reserve", len("hello there") + len("héllo".encode())), ("commit", 3)]
    assert (reply.credits, reply.usage.prompt_tokens, reply.provider, reply.model) == (3, 3, "a", "a-embed")
    assert [unpack(v) for v in reply.vectors] == [[1.0, 0.0], [1.0, 0.0]]
    assert credits.available == 997


async def test_an_unknown_model_is_refused_before_anything_is_held() -> None:
    credits = FakeCredits()
    embedder = ScriptedEmbedder("a")
    with pytest.raises(NotFound) as refused:
        await handlers(credits, embedder).create_embeddings(envelope("x", model="gpt-4o-mini"))
    assert refused.value.extra["models"] == ["a-embed"]
    assert credits.calls == [] and embedder.calls == []


async def test_longer_vectors_than_the_model_gives_are_refused_before_anything_is_held() -> None:
    credits = FakeCredits()
    embedder = ScriptedEmbedder("a")
    with pytest.raises(BadRequest) as refused:
        await handlers(credits, embedder).create_embeddings(envelope("x", model="a-embed", dimensions=3))
    assert refused.value.extra["errors"][0]["field"] == "body.dimensions"
    assert credits.calls == [] and embedder.calls == []


async def test_not_enough_credits_calls_no_provider() -> None:
    embedder = ScriptedEmbedder("a")
    with pytest.raises(InsufficientCredits):
        await handlers(FakeCredits(available=2), embedder).create_embeddings(envelope("four bytes", model="a-embed"))
    assert embedder.calls == []


async def test_a_failing_owner_is_retried_never_swapped_and_the_hold_released() -> None:
    credits = FakeCredits()
    owner = ScriptedEmbedder("a", [failure("a", 503), failure("a", 503)])
    other = ScriptedEmbedder("b")
    with pytest.raises(UpstreamFailed):
        await handlers(credits, owner, other).create_embeddings(envelope("x", model="a-embed"))
    assert len(owner.calls) == 2 and other.calls == []
    assert credits.calls == [("reserve", 1), ("release", 1)] and credits.available == 100


async def test_an_open_breaker_answers_503_with_nothing_charged() -> None:
    credits = FakeCredits()
    owner = ScriptedEmbedder("a", [failure("a", 500)] * 2)
    service = handlers(credits, owner, failures=2)
    with pytest.raises(UpstreamFailed):
        await service.create_embeddings(envelope("x", model="a-embed"))
    with pytest.raises(ServiceUnavailable) as cooling:
        await service.create_embeddings(envelope("x", model="a-embed"))
    assert cooling.value.extra["retry_after"] > 0
    assert len(owner.calls) == 2
    assert credits.calls == [("reserve", 1), ("release", 1), ("reserve", 1), ("release", 1)]
    assert credits.available == 100


async def test_the_offline_provider_embeds_deterministically_at_the_asked_size() -> None:
    service = handlers(FakeCredits(), LocalEmbeddings())
    first = await service.create_embeddings(envelope("red apple", "red pear", model="local-embed-1", dimensions=16))
    again = await service.create_embeddings(envelope("red apple", model="local-embed-1", dimensions=16))
    vectors = [unpack(v) for v in first.vectors]
    assert [len(v) for v in vectors] == [16, 16]
    assert sum(v * v for v in vectors[0]) == pytest.approx(1.0, abs=1e-5)
    assert again.vectors[0] == first.vectors[0] and first.vectors[0] != first.vectors[1]
