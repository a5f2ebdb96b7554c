"""The OpenAI and Gemini embedding adapters through the official SDKs against the simulator:
one vector per input in order, the asked size, the provider's token count, failures classified."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chat.providers.base import ProviderError
from chat.providers.embedding import EmbeddingProvider, EmbeddingRequest, unpack
from chat.providers.gemini_embeddings import GeminiEmbeddings
from chat.providers.openai_embeddings import OpenAIEmbeddings
from tests.simulator.embeddings import vector
from tests.simulator.server import RunningSimulator

pytestmark = pytest.mark.integration


@pytest.fixture(params=["gemini", "openai"])
async def embedder(request: pytest.FixtureRequest, simulator: RunningSimulator) -> AsyncIterator[EmbeddingProvider]:
    made: EmbeddingProvider
    if request.param == "gemini":
        made = GeminiEmbeddings(
            api_key="k", base_url=simulator.base_urls.gemini, default_model="gemini-embedding-001", timeout_s=5
        )
    else:
        made = OpenAIEmbeddings(
            api_key="k", base_url=simulator.base_urls.openai, default_model="text-embedding-3-small", timeout_s=5
        )
    yield made
    await made.aclose()


async def test_one_vector_per_input_in_order(embedder: EmbeddingProvider, simulator: RunningSimulator) -> None:
    model = embedder.default_model
    answer = await embedder.embed(EmbeddingRequest(inputs=("red apple", "a green pear"), model=model, dimensions=24))

    vectors = [unpack(v) for v in answer.vectors]
    assert vectors[0] == pytest.approx(vector(model, "red apple", 24), abs=1e-6)
    assert vectors[1] == pytest.approx(vector(model, "a green pear", 24), abs=1e-6)
    assert (answer.model, answer.prompt_tokens) == (model, 5)
    assert simulator.sim.count(embedder.name) == 1


async def test_the_models_own_size_without_dimensions(embedder: EmbeddingProvider) -> None:
    answer = await embedder.embed(EmbeddingRequest(inputs=("x",), model=embedder.default_model))
    assert len(unpack(answer.vectors[0])) == {"gemini": 3072, "openai": 1536}[embedder.name]


async def test_gemini_takes_a_long_list_in_parts_of_100(simulator: RunningSimulator) -> None:
    embedder = GeminiEmbeddings(
        api_key="k", base_url=simulator.base_urls.gemini, default_model="gemini-embedding-001", timeout_s=5
    )
    texts = tuple(f"text number {n}" for n in range(250))
    try:
        answer = await embedder.embed(EmbeddingRequest(inputs=texts, model="gemini-embedding-001", dimensions=4))
    finally:
        await embedder.aclose()
    assert simulator.sim.count("gemini", "batchEmbedContents") == 3
    assert [unpack(v) for v in answer.vectors[199:201]] == [
        pytest.approx(vector("gemini-embedding-001", t, 4), abs=1e-6) for t in texts[199:201]
    ]
    assert answer.prompt_tokens == 750


@pytest.mark.parametrize(("status", "retryable", "counts"), [(503, True, True), (429, True, True), (400, False, False)])
async def test_failures_are_classified(
    embedder: EmbeddingProvider, simulator: RunningSimulator, status: int, retryable: bool, counts: bool
) -> None:
    simulator.sim.add_fault(embedder.name, status=status)
    with pytest.raises(ProviderError) as failed:
        await embedder.embed(EmbeddingRequest(inputs=("x",), model=embedder.default_model))
    assert (failed.value.status, failed.value.retryable, failed.value.counts) == (status, retryable, counts)


async def test_a_malformed_reply_is_retryable(embedder: EmbeddingProvider, simulator: RunningSimulator) -> None:
    simulator.sim.add_fault(embedder.name, malformed=True)
    with pytest.raises(ProviderError) as failed:
        await embedder.embed(EmbeddingRequest(inputs=("x",), model=embedder.default_model))
    assert failed.value.retryable
