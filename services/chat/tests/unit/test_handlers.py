import uuid

import pytest

from chat.handlers import ChatHandlers
from chat.providers import LocalProvider
from common.contracts import ChatMessage, CompleteChat, Envelope

pytestmark = pytest.mark.unit


def envelope(*messages: tuple[str, str], model: str | None = None) -> Envelope[CompleteChat]:
    return Envelope[CompleteChat](
        type="CompleteChat",
        request_id="r",
        message_id=uuid.uuid4(),
        payload=CompleteChat(messages=[ChatMessage(role=r, content=c) for r, c in messages], model=model),  # type: ignore[arg-type]
    )


async def test_local_provider_answers_the_last_user_message() -> None:
    handlers = ChatHandlers(provider=LocalProvider(), default_model="local-echo-1")
    reply = await handlers.complete_chat(
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


async def test_requested_model_is_reported() -> None:
    handlers = ChatHandlers(provider=LocalProvider(), default_model="local-echo-1")
    assert (await handlers.complete_chat(envelope(("user", "hi"), model="local-other"))).model == "local-other"


async def test_same_conversation_same_answer() -> None:
    provider = LocalProvider()
    messages = [ChatMessage(role="user", content="repeat me")]
    assert await provider.complete(messages, model="m") == await provider.complete(messages, model="m")
