"""The official SDKs' embedding calls against the simulator: `openai` `embeddings.create` and
`google-genai` `models.embed_content`, their encodings, dimensions and faults."""

from __future__ import annotations

import math

import httpx
import openai
import pytest
from google import genai
from google.genai import errors, types

from tests.simulator.server import RunningSimulator

pytestmark = pytest.mark.integration


def openai_client(simulator: RunningSimulator) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=simulator.base_urls.openai, api_key="sim-openai-key", max_retries=0, timeout=10)


def gemini_client(simulator: RunningSimulator) -> genai.Client:
    options = types.HttpOptions(base_url=simulator.base_urls.gemini, timeout=10_000)
    return genai.Client(api_key="sim-gemini-key", http_options=options)


def norm(values: list[float]) -> float:
    return math.sqrt(sum(v * v for v in values))


async def test_openai_embeddings_are_deterministic_unit_vectors_in_either_encoding(
    simulator: RunningSimulator,
) -> None:
    async with openai_client(simulator) as api:
        decoded = await api.embeddings.create(model="text-embedding-3-small", input=["red apple", "green pear"])
        floats = await api.embeddings.create(
            model="text-embedding-3-small", input=["red apple", "green pear"], encoding_format="float"
        )

    assert [len(d.embedding) for d in decoded.data] == [1536, 1536]
    assert [d.index for d in decoded.data] == [0, 1]
    assert decoded.data[0].embedding != decoded.data[1].embedding
    assert norm(decoded.data[0].embedding) == pytest.approx(1.0, abs=1e-5)
    assert decoded.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)  # float32 on the wire
    assert decoded.usage.prompt_tokens == decoded.usage.total_tokens == 4
    assert simulator.sim.calls.recent()[-1]["inputs"] == ["red apple", "green pear"]
    assert simulator.sim.count("openai", "embeddings") == 2


async def test_openai_dimensions_and_invalid_input(simulator: RunningSimulator) -> None:
    async with openai_client(simulator) as api:
        short = await api.embeddings.create(model="text-embedding-3-large", input="one", dimensions=64)
        with pytest.raises(openai.BadRequestError) as empty:
            await api.embeddings.create(model="text-embedding-3-small", input="")
        with pytest.raises(openai.NotFoundError):
            await api.embeddings.create(model="no-such-embedder", input="x")

    assert len(short.data[0].embedding) == 64
    assert isinstance(empty.value.body, dict) and empty.value.body["param"] == "input"


async def test_gemini_embed_content_sends_a_batch(simulator: RunningSimulator) -> None:
    client = gemini_client(simulator)
    try:
        reply = await client.aio.models.embed_content(
            model="gemini-embedding-001",
            contents=["red apple", "green pear"],
            config=types.EmbedContentConfig(output_dimensionality=32),
        )
    finally:
        await client.aio.aclose()
        client.close()

    assert reply.embeddings is not None
    vectors = [e.values or [] for e in reply.embeddings]
    assert [len(v) for v in vectors] == [32, 32] and vectors[0] != vectors[1]
    assert norm(vectors[0]) == pytest.approx(1.0)
    assert reply.usage_metadata is not None and reply.usage_metadata.prompt_token_count == 4
    call = simulator.sim.calls.recent()[-1]
    assert call["path"] == "/gemini/v1/models/gemini-embedding-001:batchEmbedContents"
    assert call["inputs"] == ["red apple", "green pear"]


async def test_gemini_single_embed_content_on_the_wire(simulator: RunningSimulator) -> None:
    async with httpx.AsyncClient(base_url=simulator.base_urls.gemini) as http:
        reply = await http.post(
            "/v1beta/models/gemini-embedding-001:embedContent",
            json={"content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 8},
            headers={"x-goog-api-key": "k"},
        )
    assert reply.status_code == 200
    assert len(reply.json()["embedding"]["values"]) == 8


async def test_faults_reach_the_embedding_endpoints(simulator: RunningSimulator) -> None:
    simulator.sim.add_fault("openai", status=503, endpoint="embeddings")
    simulator.sim.add_fault("gemini", status=429, endpoint="batchEmbedContents")
    client = gemini_client(simulator)
    try:
        async with openai_client(simulator) as api:
            with pytest.raises(openai.InternalServerError):
                await api.embeddings.create(model="text-embedding-3-small", input="x")
        with pytest.raises(errors.ClientError) as limited:
            await client.aio.models.embed_content(model="gemini-embedding-001", contents="x")
    finally:
        await client.aio.aclose()
        client.close()
    assert limited.value.code == 429
