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
