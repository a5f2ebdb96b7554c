from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from common.contracts import ChatMessage


@dataclass(frozen=True, slots=True)
class ProviderAnswer:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int


class ChatProvider(Protocol):
    name: str

    async def complete(self, messages: list[ChatMessage], *, model: str) -> ProviderAnswer: ...
