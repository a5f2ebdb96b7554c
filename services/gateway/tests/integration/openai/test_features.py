"""What OpenAI clients send beyond text, through the official `openai` SDK against the gateway:
function calling round trips, JSON mode, structured outputs parsed by the SDK, image parts and
several choices, each answered by OpenAI and by Gemini (the simulator behind them), each charged
what its price says: a credit per choice plus a credit per token the provider counted. The
native `POST /v1/chat` takes the same features in the contract's own shapes (last tests)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from gateway.auth.dev_issuer import DevIssuer
from gateway.settings import GatewaySettings
from tests.simulator.server import RunningSimulator
from tests.support.chat_system import chat_services, chat_settings, credits_settings, served
from tests.support.client import poll

pytestmark = pytest.mark.integration

SIGNUP = 100_000
PRICE = {"per_request": 1, "per_1k_tokens": 1000, "max_tokens": 60}  # a credit per choice and per token
PROVIDERS = [
    pytest.param("gpt-4o-mini", "OpenAI", id="openai"),
    pytest.param("gemini-2.5-flash", "Gemini", id="gemini"),
]
THINKING_MODEL = "gemini-3-pro-preview"  # refuses its function calls sent back without their thought signature
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city now.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
        },
    },
}
# A 1x1 PNG.
PIXEL = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


class Weather(BaseModel):
    city: str
    temperature_c: float
    conditions: list[str]


@pytest.fixture
def token(issuer: DevIssuer) -> str:
    return issuer.token(email="features@example.com", role="user")


@pytest.fixture
async def gateway_url(gateway_app: FastAPI) -> AsyncIterator[str]:
    async with served(gateway_app) as url:
        yield url


@pytest.fixture
async def api(gateway_url: str, token: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key=token, max_retries=0, timeout=20) as client:
        yield client


@pytest.fixture
async def ledger(gateway_url: str, token: str) -> AsyncIterator[Ledger]:
    async with httpx.AsyncClient(base_url=gateway_url, headers={"Authorization": f"Bearer {token}"}) as client:
        yield Ledger(client)


@pytest.fixture
async def system(gateway_settings: GatewaySettings, simulator: RunningSimulator) -> AsyncIterator[None]:
    chat = chat_settings(
        gateway_settings,
        simulator,
        chat_price=PRICE,
        chat_model_prices={THINKING_MODEL: PRICE},
        chat_usd_prices={THINKING_MODEL: {"input_per_1m": 2.0, "output_per_1m": 12.0}},
    )
    async with chat_services(gateway_settings, chat, credits=credits_settings(gateway_settings, signup_credits=SIGNUP)):
        yield


class Ledger:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def settled(self) -> dict[str, int]:
        """The balance once no credits are held."""

        async def read() -> dict[str, int]:
            response = await self._client.get("/v1/credits")
            assert response.status_code == 200, response.text
            return response.json()  # type: ignore[no-any-return]

        return await poll(read, lambda b: b["reserved"] == 0, within=10, interval=0.05)


def priced(reply: Any, choices: int = 1) -> int:
    """What PRICE says an answer costs: a credit per choice and per token counted."""
    assert reply.usage is not None
    return choices + reply.usage.total_tokens


def credits_of(reply: Any) -> int:
    assert reply.model_extra is not None
    return int(reply.model_extra["credits"])


@pytest.mark.parametrize(("model", "provider"), PROVIDERS)
async def test_a_two_step_function_calling_round_trip(
    api: openai.AsyncOpenAI, system: None, ledger: Ledger, simulator: RunningSimulator, model: str, provider: str
) -> None:
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Oslo?"}]
    first = await api.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL], seed=7)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "sample", "unit": "celsius"}
    assert first.model_extra is not None and first.model_extra["provider"] == provider.lower()

    messages += [choice.message, {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'}]
    second = await api.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL], seed=7)
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == f'Simulated {provider} answer from the tool results: {{"temp_c": 21}}'
    assert second.choices[0].message.tool_calls is None

    sent = simulator.sim.calls.recent()[-1]["messages"]
    assert [m["role"] for m in sent][-3:] == (
        ["user", "assistant", "tool"] if provider == "OpenAI" else ["user", "model", "user"]
    )
    for reply in (first, second):
        assert credits_of(reply) == priced(reply)
    balance = await ledger.settled()
    assert (
        balance["spent"] == credits_of(first) + credits_of(second) and balance["available"] == SIGNUP - balance["spent"]
    )


@pytest.mark.parametrize(("model", "provider"), PROVIDERS)
async def test_a_streamed_tool_call_arrives_whole_and_is_charged(
    api: openai.AsyncOpenAI, system: None, ledger: Ledger, model: str, provider: str
) -> None:
    stream = await api.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Weather in Rome?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
        stream_options={"include_usage": True},
    )
    calls: dict[int, dict[str, str]] = {}
    finish, usage, credits = None, None, None
    async for chunk in stream:
        if chunk.usage is not None:
            usage, credits = chunk.usage, (chunk.model_extra or {})["credits"]
        for c in chunk.choices:
            finish = c.finish_reason or finish
            for delta in c.delta.tool_calls or ():
                part = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                part["id"] += delta.id or ""
                part["name"] += delta.function.name or "" if delta.function else ""
                part["arguments"] += delta.function.arguments or "" if delta.function else ""
    assert finish == "tool_calls" and list(calls) == [0]
    assert calls[0]["name"] == "get_weather" and json.loads(calls[0]["arguments"])["city"] == "sample"
    assert usage is not None and credits == 1 + usage.total_tokens
    assert (await ledger.settled())["spent"] == credits


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
async def test_a_gemini_3_function_call_sent_back_as_clients_send_it_keeps_its_thought_signature(
    api: openai.AsyncOpenAI, system: None, ledger: Ledger, streamed: bool
) -> None:
    asked: list[Any] = [{"role": "user", "content": "What is the weather in Oslo?"}]
    if streamed:
        stream = await api.chat.completions.create(
            model=THINKING_MODEL, messages=asked, tools=[WEATHER_TOOL], stream=True
        )
        call: dict[str, str] = {"id": "", "name": "", "arguments": ""}
        async for chunk in stream:
            for delta in chunk.choices[0].delta.tool_calls or () if chunk.choices else ():
                call["id"] += delta.id or ""
                call["name"] += delta.function.name or "" if delta.function else ""
                call["arguments"] += delta.function.arguments or "" if delta.function else ""
    else:
        first = await api.chat.completions.create(model=THINKING_MODEL, messages=asked, tools=[WEATHER_TOOL])
        assert first.choices[0].message.tool_calls is not None
        made = first.choices[0].message.tool_calls[0]
        call = {"id": made.id, "name": made.function.name, "arguments": made.function.arguments}
    assert call["name"] == "get_weather"

    # What a client keeps of the call: its id, name and arguments, in a plain dict.
    history = [
        *asked,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": call["arguments"]},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call["id"], "content": '{"temp_c": 21}'},
    ]
    second = await api.chat.completions.create(model=THINKING_MODEL, messages=history, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == 'Simulated Gemini answer from the tool results: {"temp_c": 21}'
    assert (await ledger.settled())["reserved"] == 0


@pytest.mark.parametrize(("model", "provider"), PROVIDERS)
async def test_json_mode_answers_a_json_object(
    api: openai.AsyncOpenAI, system: None, ledger: Ledger, simulator: RunningSimulator, model: str, provider: str
) -> None:
    reply = await api.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Name a broker, in JSON."}],
        response_format={"type": "json_object"},
    )
    content = reply.choices[0].message.content
    assert content is not None
    assert json.loads(content) == {"answer": f"Simulated {provider} answer to: Name a broker, in JSON."}
    assert credits_of(reply) == priced(reply)
    assert (await ledger.settled())["spent"] == credits_of(reply)


@pytest.mark.parametrize(("model", "provider"), PROVIDERS)
async def test_a_json_schema_answer_is_parsed_by_the_sdk_into_a_pydantic_model(
    api: openai.AsyncOpenAI, system: None, ledger: Ledger, simulator: RunningSimulator, model: str, provider: str
) -> None:
    reply = await api.chat.completions.parse(
        model=model, messages=[{"role": "user", "content": "The weather in Oslo?"}], response_format=Weather
    )
    assert reply.choices[0].message.parsed == Weather(city="sample", temperature_c=1.5, conditions=["sample"])
    call = simulator.sim.calls.recent()[-1]
    assert call["provider"] == provider.lower()
    assert credits_of(reply) == priced(reply)
    assert (await ledger.settled())["spent"] == credits_of(reply)


@pytest.mark.parametrize(
    ("model", "provider", "image_tokens"), [(*p.values, t) for p, t in zip(PROVIDERS, (85, 258), strict=True)]
)
async def test_an_image_part_is_shown_to_the_model_and_priced(
    api: openai.AsyncOpenAI, system: None, ledger: Ledger, model: str, provider: str, image_tokens: int
) -> None:
    content: Any = [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}", "detail": "low"}},
    ]
    reply = await api.chat.completions.create(model=model, messages=[{"role": "user", "content": content}])
    assert (
        reply.choices[0].message.content == f"Simulated {provider} answer to: What is in this picture? [1 image seen]"
    )
    assert reply.usage is not None and reply.usage.prompt_tokens == 5 + image_tokens  # five words and the image
    assert credits_of(reply) == priced(reply)
    assert (await ledger.settled())["spent"] == credits_of(reply)


@pytest.mark.parametrize(("model", "provider"), PROVIDERS)
async def test_n_choices_are_answered_and_each_is_charged(
    api: openai.AsyncOpenAI, system: None, ledger: Ledger, model: str, provider: str
) -> None:
    reply = await api.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Pick a colour"}], n=2, stop=["never"]
    )
    texts = [c.message.content for c in reply.choices]
    answer = f"Simulated {provider} answer to: Pick a colour"
    assert texts == [answer, f"{answer} (choice 2)"] and [c.index for c in reply.choices] == [0, 1]
    assert reply.usage is not None and reply.usage.completion_tokens == 7 + 9
    assert credits_of(reply) == priced(reply, choices=2)
    assert (await ledger.settled())["spent"] == credits_of(reply)


@pytest.mark.parametrize(
    ("model", "provider", "image_tokens"), [(*p.values, t) for p, t in zip(PROVIDERS, (765, 258), strict=True)]
)
async def test_an_https_image_is_passed_by_reference(
    api: openai.AsyncOpenAI,
    system: None,
    ledger: Ledger,
    simulator: RunningSimulator,
    model: str,
    provider: str,
    image_tokens: int,
) -> None:
    content: Any = [{"type": "image_url", "image_url": {"url": "https://images.example.com/cat.webp"}}]
    reply = await api.chat.completions.create(model=model, messages=[{"role": "user", "content": content}])
    assert reply.choices[0].message.content == f"Simulated {provider} answer to: (empty prompt) [1 image seen]"
    assert simulator.sim.calls.recent()[-1]["images"] == 1
    assert reply.usage is not None and reply.usage.prompt_tokens == image_tokens
    assert credits_of(reply) == priced(reply)
    assert (await ledger.settled())["spent"] == credits_of(reply)


@pytest.mark.parametrize(
    ("message", "param"),
    [
        (
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://example.com/a.png"}}]},
            "messages.0.content.0.image_url.url",
        ),
        ({"role": "tool", "content": "21"}, "messages.0.tool_call_id"),
        ({"role": "assistant", "content": None}, "messages.0"),
        ({"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}, "messages.0.content.0.type"),
    ],
)
async def test_bad_input_is_400_naming_the_field_and_changes_nothing(
    api: openai.AsyncOpenAI, system: None, ledger: Ledger, simulator: RunningSimulator, message: Any, param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        await api.chat.completions.create(model="gpt-4o-mini", messages=[message])
    body = bad.value.body
    assert isinstance(body, dict) and body["param"] == param and body["request_id"] == bad.value.request_id
    assert simulator.sim.count() == 0
    assert await ledger.settled() == {"available": SIGNUP, "reserved": 0, "spent": 0, "granted": SIGNUP}


async def test_a_tool_choice_naming_no_declared_tool_is_404_and_unsupported_fields_are_400(
    api: openai.AsyncOpenAI, system: None, ledger: Ledger, simulator: RunningSimulator
) -> None:
    asked: Any = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.NotFoundError) as bad:
        await api.chat.completions.create(
            model="gpt-4o-mini",
            messages=asked,
            tools=[WEATHER_TOOL],
            tool_choice={"type": "function", "function": {"name": "get_time"}},
        )
    assert isinstance(bad.value.body, dict) and bad.value.body["param"] == "tool_choice"
    with pytest.raises(openai.BadRequestError) as unsupported:
        await api.chat.completions.create(model="gpt-4o-mini", messages=asked, logit_bias={"50256": -100})
    assert isinstance(unsupported.value.body, dict) and unsupported.value.body["param"] == "logit_bias"
    assert simulator.sim.count() == 0
    assert (await ledger.settled())["spent"] == 0


@pytest.mark.parametrize(("model", "provider"), PROVIDERS)
async def test_tool_calls_are_cached_only_for_a_deterministic_request(
    api: openai.AsyncOpenAI, system: None, ledger: Ledger, simulator: RunningSimulator, model: str, provider: str
) -> None:
    asked: Any = [{"role": "user", "content": "Weather in Lima?"}]
    sampled = [await api.chat.completions.create(model=model, messages=asked, tools=[WEATHER_TOOL]) for _ in "ab"]
    assert [(r.model_extra or {})["cached"] for r in sampled] == [False, False]
    assert simulator.sim.count(provider.lower()) == 2  # asked twice: a random sample is not handed out again

    seeded = [
        await api.chat.completions.create(model=model, messages=asked, tools=[WEATHER_TOOL], seed=4) for _ in "ab"
    ]
    assert [(r.model_extra or {})["cached"] for r in seeded] == [False, True]
    assert simulator.sim.count(provider.lower()) == 3
    first, again = (r.choices[0].message.tool_calls for r in seeded)
    assert first == again and first is not None and first[0].function.name == "get_weather"
    assert credits_of(seeded[1]) == 0  # a hit costs CHAT_CACHE_HIT_PRICE, 0 by default

    with_other_format = await api.chat.completions.create(
        model=model, messages=asked, tools=[WEATHER_TOOL], seed=4, response_format={"type": "json_object"}
    )
    assert (with_other_format.model_extra or {})["cached"] is False
    spent = sum(credits_of(r) for r in (*sampled, *seeded, with_other_format))
    assert (await ledger.settled())["spent"] == spent


@pytest.mark.parametrize(("model", "provider"), PROVIDERS)
async def test_n_choices_stream_and_each_is_charged(
    api: openai.AsyncOpenAI, system: None, ledger: Ledger, model: str, provider: str
) -> None:
    stream = await api.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Pick a colour"}],
        n=2,
        stream=True,
        stream_options={"include_usage": True},
    )
    texts: dict[int, str] = {}
    finishes: dict[int, str] = {}
    usage, credits = None, None
    async for chunk in stream:
        if chunk.usage is not None:
            usage, credits = chunk.usage, (chunk.model_extra or {})["credits"]
        for c in chunk.choices:
            texts[c.index] = texts.get(c.index, "") + (c.delta.content or "")
            if c.finish_reason:
                finishes[c.index] = c.finish_reason
    answer = f"Simulated {provider} answer to: Pick a colour"
    assert texts == {0: answer, 1: f"{answer} (choice 2)"} and finishes == {0: "stop", 1: "stop"}
    assert usage is not None and usage.completion_tokens == 7 + 9 and credits == 2 + usage.total_tokens
    assert (await ledger.settled())["spent"] == credits


async def test_a_threaded_request_with_tools_is_400_and_changes_nothing(
    api: openai.AsyncOpenAI, system: None, ledger: Ledger, gateway_url: str, token: str, simulator: RunningSimulator
) -> None:
    async with httpx.AsyncClient(base_url=gateway_url, headers={"Authorization": f"Bearer {token}"}) as client:
        created = await client.post("/v1/threads", json={"title": "weather"})
        assert created.status_code == 201, created.text
    with pytest.raises(openai.BadRequestError) as bad:
        await api.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Weather?"}],
            tools=[WEATHER_TOOL],
            extra_body={"thread_id": created.json()["thread_id"]},
        )
    assert isinstance(bad.value.body, dict) and bad.value.body["param"] == "tools"
    assert simulator.sim.count() == 0
    assert await ledger.settled() == {"available": SIGNUP, "reserved": 0, "spent": 0, "granted": SIGNUP}


@pytest.mark.parametrize(("model", "provider"), PROVIDERS)
async def test_a_streamed_json_schema_answer_is_parsed_by_the_sdks_stream_helper(
    api: openai.AsyncOpenAI, system: None, ledger: Ledger, model: str, provider: str
) -> None:
    async with api.chat.completions.stream(
        model=model,
        messages=[{"role": "user", "content": "The weather in Oslo?"}],
        response_format=Weather,
        stream_options={"include_usage": True},
    ) as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_completion()
    assert final.choices[0].message.parsed == Weather(city="sample", temperature_c=1.5, conditions=["sample"])
    assert (await ledger.settled())["spent"] == priced(final)  # the helper's final object drops our `credits`


NATIVE_WEATHER: Any = WEATHER_TOOL["function"]  # the contract's FunctionTool: name, description, parameters


@pytest.fixture
async def native(gateway_url: str, token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=20
    ) as client:
        yield client


def answered(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["credits"] == len(body["choices"] or [None]) + body["usage"]["total_tokens"]  # PRICE
    return body


@pytest.mark.parametrize(("model", "provider"), PROVIDERS)
async def test_native_chat_takes_a_function_calling_round_trip(
    native: httpx.AsyncClient, system: None, ledger: Ledger, model: str, provider: str
) -> None:
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Oslo?"}]
    first = answered(
        await native.post("/v1/chat", json={"model": model, "messages": messages, "tools": [NATIVE_WEATHER]})
    )
    assert first["finish_reason"] == "tool_calls" and first["message"]["role"] == "assistant"
    [call] = first["message"]["tool_calls"]
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"city": "sample", "unit": "celsius"}

    messages += [first["message"], {"role": "tool", "tool_call_id": call["id"], "content": '{"temp_c": 21}'}]
    second = answered(
        await native.post("/v1/chat", json={"model": model, "messages": messages, "tools": [NATIVE_WEATHER]})
    )
    assert second["finish_reason"] == "stop" and not second["message"]["tool_calls"]
    assert second["message"]["content"] == f'Simulated {provider} answer from the tool results: {{"temp_c": 21}}'
    assert (await ledger.settled())["spent"] == first["credits"] + second["credits"]


@pytest.mark.parametrize(("model", "provider"), PROVIDERS)
async def test_native_chat_answers_n_choices_in_a_json_schema_each_charged(
    native: httpx.AsyncClient, system: None, ledger: Ledger, model: str, provider: str
) -> None:
    schema = Weather.model_json_schema()
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "The weather in Oslo?"}],
        "response_format": {"type": "json_schema", "name": "weather", "json_schema": schema, "strict": True},
        "n": 2,
        "stop": ["never"],
        "seed": 7,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.5,
        "end_user": "customer-42",
    }
    reply = answered(await native.post("/v1/chat", json=body))
    assert [c["index"] for c in reply["choices"]] == [0, 1] and reply["choices"][0]["message"] == reply["message"]
    for choice in reply["choices"]:
        Weather.model_validate_json(choice["message"]["content"])  # each is JSON matching the schema
    assert (await ledger.settled())["spent"] == reply["credits"]


async def test_native_chat_refuses_a_tool_choice_naming_no_tool_and_charges_nothing(
    native: httpx.AsyncClient, system: None, ledger: Ledger
) -> None:
    before = await ledger.settled()
    body = {
        "messages": [{"role": "user", "content": "Weather?"}],
        "tools": [NATIVE_WEATHER],
        "tool_choice": {"function": "get_time"},
    }
    response = await native.post("/v1/chat", json=body)
    assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "body.tool_choice"
    too_many = await native.post("/v1/chat", json={"messages": body["messages"], "n": 9})
    assert too_many.status_code == 422 and too_many.json()["errors"][0]["field"] == "body.n"
    assert await ledger.settled() == before
