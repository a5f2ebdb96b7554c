"""Broker entry points of the chat service."""

from __future__ import annotations

import uuid

from chat.providers import ChatProvider
from common.contracts import ChatCompletion, ChatMessage, CompleteChat, Envelope, Usage


class ChatHandlers:
    def __init__(self, *, provider: ChatProvider, default_model: str) -> None:
        self._provider = provider
        self._default_model = default_model

    async def complete_chat(self, envelope: Envelope[CompleteChat]) -> ChatCompletion:
        request = envelope.payload
        answer = await self._provider.complete(list(request.messages), model=request.model or self._default_model)
        return ChatCompletion(
            id=f"chat_{uuid.uuid4().hex}",
            message=ChatMessage(role="assistant", content=answer.text),
            model=answer.model,
            provider=self._provider.name,
            usage=Usage(
                prompt_tokens=answer.prompt_tokens,
                completion_tokens=answer.completion_tokens,
                total_tokens=answer.prompt_tokens + answer.completion_tokens,
            ),
        )
