"""The Gemini and OpenAI adapters through the official SDKs against the provider simulator:
answers, streams, generation parameters, and how each failure is classified."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chat.providers import ProviderAnswer, ProviderError, ProviderRequest
from chat.providers.base import ChatProvider
from chat.providers.gemini import GeminiProvider
from chat.providers.openai import OpenAIProvider
from common.contracts import ChatMessage
from common.contracts.chatfeatures import FunctionTool, ImageInput, ToolCall, ToolChoice
from tests.simulator.server import RunningSimulator

pytestmark = pytest.mark.integration

CONVERSATION = (
    ChatMessage(role="system", content="be brief"),
    ChatMessage(role="user", content="What is RabbitMQ?"),
    ChatMessage(role="assistant", content="A broker."),
    ChatMessage(role="user", content="And Redis?"),
)


@pytest.fixture(params=["gemini", "openai"])
async def provider(request: pytest.FixtureRequest, simulator: RunningSimulator) -> AsyncIterator[ChatProvider]:
    made: ChatProvider
    if request.param == "gemini":
        made = GeminiProvider(
            api_key="k", base_url=simulator.base_urls.gemini, default_model="gemini-2.5-flash", timeout_s=5
        )
    else:
        made = OpenAIProvider(
            api_key="k", base_url=simulator.base_urls.openai, default_model="gpt-4o-mini", timeout_s=5
        )
    yield made
    await made.aclose()


def ask(provider: ChatProvider, **params: object) -> ProviderRequest:
    return ProviderRequest(messages=CONVERSATION, model=provider.default_model, **params)  # type: ignore[arg-type]


LABEL = {"gemini": "Gemini", "openai": "OpenAI"}


async def test_answers_the_last_question_with_usage(provider: ChatProvider, simulator: RunningSimulator) -> None:
    answer = await provider.complete(ask(provider, temperature=0.2, top_p=0.9))
    assert answer.text == f"Simulated {LABEL[provider.name]} answer to: And Redis?"
    assert (answer.model, answer.finish_reason) == (provider.default_model, "stop")
    assert answer.prompt_tokens > 0 and answer.completion_tokens == 6
    assert simulator.sim.count(provider.name) == 1


async def test_max_tokens_cuts_the_answer(provider: ChatProvider) -> None:
    answer = await provider.complete(ask(provider, max_tokens=2))
    assert answer.text == f"Simulated {LABEL[provider.name]}" and answer.finish_reason == "length"


async def test_stream_yields_pieces_then_the_whole_answer(provider: ChatProvider) -> None:
    items = [item async for item in provider.stream(ask(provider))]
    pieces, last = items[:-1], items[-1]
    assert all(isinstance(p, str) for p in pieces) and len(pieces) == 6
    assert isinstance(last, ProviderAnswer) and last.text == "".join(pieces)  # type: ignore[arg-type]
    assert last.completion_tokens == 6


@pytest.mark.parametrize(
    ("fault", "retryable", "counts"),
    [
        ({"status": 503}, True, True),
        ({"status": 500}, True, True),
        ({"status": 429}, True, True),
        ({"malformed": True}, True, True),
        ({"status": 400}, False, False),
        ({"status": 401}, False, True),
    ],
)
async def test_failures_are_classified(
    provider: ChatProvider, simulator: RunningSimulator, fault: dict[str, object], retryable: bool, counts: bool
) -> None:
    simulator.sim.add_fault(provider.name, **fault)
    with pytest.raises(ProviderError) as caught:
        await provider.complete(ask(provider))
    assert (caught.value.retryable, caught.value.counts) == (retryable, counts)
    assert "sim" not in caught.value.detail.lower()  # the provider's own text is not passed on


async def test_a_malformed_stream_is_a_retryable_failure(provider: ChatProvider, simulator: RunningSimulator) -> None:
    simulator.sim.add_fault(provider.name, malformed=True)
    with pytest.raises(ProviderError) as caught:
        _ = [item async for item in provider.stream(ask(provider))]
    assert caught.value.retryable


TOOLS = (
    FunctionTool(name="get_weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}}),
    FunctionTool(name="get_time", parameters={"type": "object", "properties": {"zone": {"type": "string"}}}),
)


async def test_parallel_tool_results_go_back_as_each_providers_protocol_has_them(
    provider: ChatProvider, simulator: RunningSimulator
) -> None:
    calls = [
        ToolCall(id="call_a", name="get_weather", arguments='{"city":"Oslo"}'),
        ToolCall(id="call_b", name="get_time", arguments='{"zone":"CET"}'),
    ]
    messages = (
        ChatMessage(role="user", content="Weather and time in Oslo?"),
        ChatMessage(role="assistant", tool_calls=calls),
        ChatMessage(role="tool", content='{"temp_c": 21}', tool_call_id="call_a"),
        ChatMessage(role="tool", content="12:00", tool_call_id="call_b"),
    )
    request = ProviderRequest(messages=messages, model=provider.default_model, tools=TOOLS)
    answer = await provider.complete(request)
    assert answer.tool_calls == () and answer.finish_reason == "stop"
    # Gemini: both results in one user turn, as functionResponse parts named after their calls.
    results = ['{"temp_c": 21}', "12:00"] if provider.name == "openai" else ['{"temp_c": 21}', '{"result": "12:00"}']
    assert answer.text == f"Simulated {LABEL[provider.name]} answer from the tool results: {' | '.join(results)}"
    roles = [m["role"] for m in simulator.sim.calls.recent()[-1]["messages"]]
    assert roles == (["user", "assistant", "tool", "tool"] if provider.name == "openai" else ["user", "model", "user"])


async def test_a_streamed_tool_call_and_other_choices_come_with_the_answer(provider: ChatProvider) -> None:
    request = ProviderRequest(
        messages=(ChatMessage(role="user", content="Time in Oslo?"),),
        model=provider.default_model,
        tools=TOOLS,
        tool_choice=ToolChoice(function="get_time"),
        n=2,
    )
    pieces = [item async for item in provider.stream(request)]
    answer = pieces[-1]
    assert isinstance(answer, ProviderAnswer) and pieces[:-1] == []  # no text: a call
    assert [(c.name, c.arguments) for c in answer.tool_calls] == [("get_time", '{"zone":"sample"}')]
    assert answer.finish_reason == "tool_calls" and len(answer.more) == 1
    assert (
        answer.more[0].tool_calls[0].name == "get_time" and answer.tool_calls[0].id != answer.more[0].tool_calls[0].id
    )


async def test_a_data_url_image_reaches_the_model(provider: ChatProvider, simulator: RunningSimulator) -> None:
    image = ImageInput(url="data:image/png;base64,iVBORw0KGgo=", detail="low")
    request = ProviderRequest(
        messages=(ChatMessage(role="user", content="What is it?", images=[image]),), model=provider.default_model
    )
    answer = await provider.complete(request)
    assert answer.text == f"Simulated {LABEL[provider.name]} answer to: What is it? [1 image seen]"
    assert simulator.sim.calls.recent()[-1]["images"] == 1
