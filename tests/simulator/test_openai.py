"""The official `openai` SDK against the simulator: chat (plain and streamed), images, models, faults."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import openai
import pytest

from tests.simulator.server import RunningSimulator

pytestmark = pytest.mark.integration

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "What is a tensor?"}]


def client(simulator: RunningSimulator, **options: object) -> openai.AsyncOpenAI:
    options = {"max_retries": 0, "timeout": 10.0, **options}
    return openai.AsyncOpenAI(base_url=simulator.base_urls.openai, api_key="sim-openai-key", **options)


async def test_chat_completion_answers_deterministically(simulator: RunningSimulator) -> None:
    async with client(simulator) as api:
        first = await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        second = await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert first.choices[0].message.content == "Simulated OpenAI answer to: What is a tensor?"
    assert second.choices[0].message.content == first.choices[0].message.content
    assert first.choices[0].finish_reason == "stop"
    assert first.model == "gpt-4o-mini"
    assert first.usage is not None
    assert (first.usage.prompt_tokens, first.usage.completion_tokens, first.usage.total_tokens) == (6, 8, 14)


async def test_max_tokens_cuts_the_answer_with_finish_reason_length(simulator: RunningSimulator) -> None:
    async with client(simulator) as api:
        reply = await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_completion_tokens=3)

    assert reply.choices[0].message.content == "Simulated OpenAI answer"
    assert reply.choices[0].finish_reason == "length"


async def test_stream_delivers_chunks_as_they_are_produced_then_usage(simulator: RunningSimulator) -> None:
    simulator.sim.add_fault("openai", stream_delay_ms=60)
    arrivals: list[float] = []
    pieces: list[str] = []
    finish_reasons: list[str | None] = []
    usage = None
    async with client(simulator) as api:
        stream = await api.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        async for chunk in stream:
            arrivals.append(time.monotonic())
            if chunk.usage is not None:
                usage = chunk.usage
                assert chunk.choices == []
                continue
            pieces.append(chunk.choices[0].delta.content or "")
            finish_reasons.append(chunk.choices[0].finish_reason)

    assert "".join(pieces) == "Simulated OpenAI answer to: What is a tensor?"
    assert len([p for p in pieces if p]) == 8
    assert finish_reasons[-1] == "stop"
    assert set(finish_reasons[:-1]) == {None}
    assert usage is not None
    assert usage.completion_tokens == 8
    # eight content chunks 60 ms apart: the first arrived well before the last was written
    assert arrivals[-1] - arrivals[1] >= 0.3


async def test_image_generation_returns_a_served_url_or_base64(simulator: RunningSimulator) -> None:
    async with client(simulator) as api:
        by_url = await api.images.generate(model="dall-e-3", prompt="a red fox", size="256x256")
        inline = await api.images.generate(model="dall-e-3", prompt="a red fox", response_format="b64_json")
        models = await api.models.list()

    assert by_url.data is not None and by_url.data[0].url is not None
    async with httpx.AsyncClient() as http:
        fetched = await http.get(by_url.data[0].url)
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "image/png"
    assert fetched.content.startswith(b"\x89PNG")
    assert inline.data is not None and inline.data[0].b64_json is not None
    assert base64.b64decode(inline.data[0].b64_json).startswith(b"\x89PNG")
    assert "gpt-4o-mini" in {m.id for m in models.data}


async def test_503_fault_surfaces_as_internal_server_error(simulator: RunningSimulator) -> None:
    simulator.sim.add_fault("openai", status=503, times=1)
    async with client(simulator) as api:
        with pytest.raises(openai.InternalServerError) as caught:
            await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        recovered = await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert caught.value.status_code == 503
    assert caught.value.body == {
        "message": "Simulated openai fault (503).",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    assert recovered.choices[0].message.content
    assert simulator.sim.count("openai", "chat.completions") == 2


async def test_429_is_retried_by_the_sdk_after_retry_after(simulator: RunningSimulator) -> None:
    simulator.sim.add_fault("openai", status=429, times=1, retry_after=0.5)
    started = time.monotonic()
    async with client(simulator, max_retries=2) as api:
        reply = await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert reply.choices[0].message.content
    assert time.monotonic() - started >= 0.45
    assert simulator.sim.count("openai", "chat.completions") == 2
    statuses = [c["status"] for c in simulator.sim.calls.recent()]
    assert statuses == [429, 200]


async def test_429_without_retries_is_a_rate_limit_error(simulator: RunningSimulator) -> None:
    simulator.sim.add_fault("openai", status=429, times=1, retry_after=1)
    async with client(simulator) as api:
        with pytest.raises(openai.RateLimitError) as caught:
            await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.code == "rate_limit_exceeded"


async def test_hang_makes_the_client_timeout_fire(simulator: RunningSimulator) -> None:
    simulator.sim.add_fault("openai", hang=True, times=1)
    started = time.monotonic()
    async with client(simulator, timeout=0.5) as api:
        with pytest.raises(openai.APITimeoutError):
            await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert 0.4 <= time.monotonic() - started < 5


async def test_malformed_body_makes_the_sdk_raise(simulator: RunningSimulator) -> None:
    simulator.sim.add_fault("openai", malformed=True, times=2)
    async with client(simulator) as api:
        # the SDK does not wrap a JSON decoding failure: it is a plain ValueError (json.JSONDecodeError)
        with pytest.raises(ValueError):
            await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        with pytest.raises(ValueError):
            stream = await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
            async for _ in stream:
                pass


async def test_fault_limited_to_one_endpoint_leaves_the_others_alone(simulator: RunningSimulator) -> None:
    simulator.sim.add_fault("openai", status=500, endpoint="images.generations")
    async with client(simulator) as api:
        chat = await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        with pytest.raises(openai.InternalServerError):
            await api.images.generate(model="dall-e-3", prompt="a red fox")

    assert chat.choices[0].message.content


async def test_tools_n_and_json_schema_follow_the_protocol(simulator: RunningSimulator) -> None:
    tool: Any = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    async with client(simulator) as api:
        called = await api.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "go"}], tools=[tool], tool_choice="required"
        )
        assert called.choices[0].finish_reason == "tool_calls"
        assert called.choices[0].message.tool_calls is not None
        assert called.choices[0].message.tool_calls[0].function.arguments == "{}"

        schema: Any = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "integer"}}}
        several = await api.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "go"}], n=3, response_format=schema
        )
        assert [c.message.content for c in several.choices] == ["1", "1", "1"]

        with pytest.raises(openai.BadRequestError):
            await api.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "go"}],
                tools=[tool],
                tool_choice={"type": "function", "function": {"name": "nope"}},
            )
