"""The official `google-genai` SDK against the simulator: generateContent (plain and streamed) and faults."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx2
import pytest
from google import genai
from google.genai import errors, types

from tests.simulator.server import RunningSimulator

pytestmark = pytest.mark.integration

MODEL = "gemini-2.5-flash"


@pytest.fixture
async def gemini(simulator: RunningSimulator) -> AsyncIterator[genai.Client]:
    client = genai.Client(
        api_key="sim-gemini-key", http_options=types.HttpOptions(base_url=simulator.base_urls.gemini, timeout=10_000)
    )
    yield client
    await client.aio.aclose()
    client.close()


async def test_generate_content_answers_with_usage_and_model_version(
    simulator: RunningSimulator, gemini: genai.Client
) -> None:
    reply = await gemini.aio.models.generate_content(
        model=MODEL,
        contents="Name a prime",
        config=types.GenerateContentConfig(system_instruction="be brief", temperature=0.2),
    )

    assert reply.text == "Simulated Gemini answer to: Name a prime"
    assert reply.candidates is not None
    assert reply.candidates[0].finish_reason == types.FinishReason.STOP
    assert reply.model_version == MODEL
    assert reply.usage_metadata is not None
    assert reply.usage_metadata.prompt_token_count == 5
    assert reply.usage_metadata.candidates_token_count == 7
    assert reply.usage_metadata.total_token_count == 12
    call = simulator.sim.calls.recent()[-1]
    assert call["path"] == f"/gemini/v1/models/{MODEL}:generateContent"
    assert call["model"] == MODEL


async def test_max_output_tokens_cuts_the_answer(gemini: genai.Client) -> None:
    reply = await gemini.aio.models.generate_content(
        model=MODEL, contents="Name a prime", config=types.GenerateContentConfig(max_output_tokens=2)
    )

    assert reply.text == "Simulated Gemini"
    assert reply.candidates is not None
    assert reply.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS


async def test_stream_delivers_chunks_as_they_are_produced(simulator: RunningSimulator, gemini: genai.Client) -> None:
    simulator.sim.add_fault("gemini", stream_delay_ms=60)
    arrivals: list[float] = []
    pieces: list[str] = []
    last = None
    async for chunk in await gemini.aio.models.generate_content_stream(model=MODEL, contents="Name a prime"):
        arrivals.append(time.monotonic())
        pieces.append(chunk.text or "")
        last = chunk

    assert "".join(pieces) == "Simulated Gemini answer to: Name a prime"
    assert len(pieces) == 7
    assert last is not None and last.candidates is not None
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata is not None and last.usage_metadata.candidates_token_count == 7
    assert arrivals[-1] - arrivals[0] >= 0.3
    assert simulator.sim.count("gemini", "streamGenerateContent") == 1


def test_sync_client_and_v1beta_are_served(simulator: RunningSimulator) -> None:
    options = types.HttpOptions(base_url=simulator.base_urls.gemini, api_version="v1beta", timeout=10_000)
    with genai.Client(api_key="sim-gemini-key", http_options=options) as client:
        reply = client.models.generate_content(model=MODEL, contents="hello")
        streamed = "".join(c.text or "" for c in client.models.generate_content_stream(model=MODEL, contents="hello"))

    assert reply.text == streamed == "Simulated Gemini answer to: hello"
    assert {c["path"] for c in simulator.sim.calls.recent()} == {
        f"/gemini/v1beta/models/{MODEL}:generateContent",
        f"/gemini/v1beta/models/{MODEL}:streamGenerateContent",
    }


async def test_503_fault_surfaces_as_server_error_in_google_format(
    simulator: RunningSimulator, gemini: genai.Client
) -> None:
    simulator.sim.add_fault("gemini", status=503, times=2)
    for _ in range(2):
        with pytest.raises(errors.ServerError) as caught:
            await gemini.aio.models.generate_content(model=MODEL, contents="hi")
        assert caught.value.code == 503
        assert caught.value.status == "UNAVAILABLE"
    reply = await gemini.aio.models.generate_content(model=MODEL, contents="hi")

    assert reply.text
    assert simulator.sim.count("gemini") == 3


async def test_429_is_a_client_error_and_retried_when_retries_are_on(simulator: RunningSimulator) -> None:
    simulator.sim.add_fault("gemini", status=429, times=1)
    plain = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=simulator.base_urls.gemini))
    with pytest.raises(errors.ClientError) as caught:
        await plain.aio.models.generate_content(model=MODEL, contents="hi")
    await plain.aio.aclose()
    plain.close()
    assert caught.value.status == "RESOURCE_EXHAUSTED"

    simulator.sim.add_fault("gemini", status=429, times=1)
    retry = types.HttpRetryOptions(attempts=3, initial_delay=0.1, max_delay=0.2, http_status_codes=[429])
    options = types.HttpOptions(base_url=simulator.base_urls.gemini, retry_options=retry)
    retrying = genai.Client(api_key="k", http_options=options)
    reply = await retrying.aio.models.generate_content(model=MODEL, contents="hi")
    await retrying.aio.aclose()
    retrying.close()

    assert reply.text
    assert [c["status"] for c in simulator.sim.calls.recent()] == [429, 429, 200]


async def test_hang_makes_the_client_timeout_fire(simulator: RunningSimulator) -> None:
    simulator.sim.add_fault("gemini", hang=True, times=1)
    options = types.HttpOptions(base_url=simulator.base_urls.gemini, timeout=500)  # milliseconds
    client = genai.Client(api_key="k", http_options=options)
    started = time.monotonic()
    # google-genai does not wrap transport errors: the timeout is its transport's own (aiohttp's
    # asyncio TimeoutError when aiohttp is installed, as it is for the OpenAI SDK; else httpx2's)
    with pytest.raises((httpx2.TimeoutException, TimeoutError)):
        await client.aio.models.generate_content(model=MODEL, contents="hi")
    elapsed = time.monotonic() - started
    await client.aio.aclose()
    client.close()

    assert 0.4 <= elapsed < 5


async def test_malformed_body_makes_the_sdk_raise(simulator: RunningSimulator, gemini: genai.Client) -> None:
    simulator.sim.add_fault("gemini", malformed=True, times=2)
    with pytest.raises(ValueError):
        await gemini.aio.models.generate_content(model=MODEL, contents="hi")
    with pytest.raises(ValueError):  # errors.UnknownApiResponseError for a stream
        async for _ in await gemini.aio.models.generate_content_stream(model=MODEL, contents="hi"):
            pass


WEATHER = types.FunctionDeclaration(
    name="get_weather",
    parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


async def test_a_declared_function_is_called_and_its_response_answered(gemini: genai.Client) -> None:
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])])
    asked = types.Content(role="user", parts=[types.Part(text="Weather in Oslo?")])
    reply = await gemini.aio.models.generate_content(model=MODEL, contents=[asked], config=config)
    assert reply.function_calls is not None and len(reply.function_calls) == 1
    call = reply.function_calls[0]
    assert (call.name, call.args) == ("get_weather", {"city": "sample"})

    answered = types.Content(
        role="user",
        parts=[types.Part(function_response=types.FunctionResponse(name="get_weather", response={"temp_c": 21}))],
    )
    assert reply.candidates is not None and reply.candidates[0].content is not None
    contents = [asked, reply.candidates[0].content, answered]
    final = await gemini.aio.models.generate_content(model=MODEL, contents=contents, config=config)
    assert final.text == 'Simulated Gemini answer from the tool results: {"temp_c": 21}'


async def test_a_gemini_3_function_call_must_come_back_with_its_thought_signature(gemini: genai.Client) -> None:
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])])
    asked = types.Content(role="user", parts=[types.Part(text="Weather in Oslo?")])
    reply = await gemini.aio.models.generate_content(model="gemini-3-pro-preview", contents=[asked], config=config)
    assert reply.candidates is not None and reply.candidates[0].content is not None
    made = reply.candidates[0].content
    assert made.parts is not None and made.parts[0].thought_signature  # the SDK hands back the bytes
    answered = types.Content(
        role="user",
        parts=[types.Part(function_response=types.FunctionResponse(name="get_weather", response={"temp_c": 21}))],
    )

    final = await gemini.aio.models.generate_content(
        model="gemini-3-pro-preview", contents=[asked, made, answered], config=config
    )
    assert final.text == 'Simulated Gemini answer from the tool results: {"temp_c": 21}'

    unsigned = made.model_copy(update={"parts": [made.parts[0].model_copy(update={"thought_signature": None})]})
    with pytest.raises(errors.ClientError) as refused:
        await gemini.aio.models.generate_content(
            model="gemini-3-pro-preview", contents=[asked, unsigned, answered], config=config
        )
    assert refused.value.code == 400 and "thought_signature" in str(refused.value)


async def test_a_json_schema_answer_and_several_candidates(gemini: genai.Client) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}, "tags": {"type": "array", "items": {}}}}
    config = types.GenerateContentConfig(
        response_mime_type="application/json", response_json_schema=schema, candidate_count=2
    )
    reply = await gemini.aio.models.generate_content(model=MODEL, contents="Count", config=config)
    assert reply.candidates is not None and [c.index for c in reply.candidates] == [0, 1]
    assert reply.parsed == {"n": 1, "tags": ["sample"]} or reply.text == '{"n": 1, "tags": ["sample"]}'


async def test_an_inline_image_counts_258_tokens(gemini: genai.Client) -> None:
    image = types.Part(inline_data=types.Blob(mime_type="image/png", data=b"\x89PNG"))
    reply = await gemini.aio.models.generate_content(model=MODEL, contents=[types.Part(text="What is it"), image])
    assert reply.text == "Simulated Gemini answer to: What is it [1 image seen]"
    assert reply.usage_metadata is not None and reply.usage_metadata.prompt_token_count == 3 + 258
