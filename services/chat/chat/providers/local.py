"""An offline provider: answers made on this machine, so the whole system runs without keys.

The answer is a deterministic function of the conversation (same question, same answer),
which also makes it a fair stand-in for cache and deduplication tests. `latency_s` lets a
demo or a crash test give it the slowness of a real model.
"""

from __future__ import annotations

import asyncio

from chat.providers.base import ProviderAnswer
from common.contracts import ChatMessage


def count_tokens(text: str) -> int:
    """A rough token count (words), good enough for usage figures offline."""
    return max(1, len(text.split()))


class LocalProvider:
    name = "local"

    def __init__(self, *, latency_s: float = 0.0) -> None:
        self._latency_s = latency_s

    async def complete(self, messages: list[ChatMessage], *, model: str) -> ProviderAnswer:
        if self._latency_s:
            await asyncio.sleep(self._latency_s)
        last_user = next((m.content for m in reversed(messages) if m.role == "user"), messages[-1].content)
        words = last_user.split()
        summary = " ".join(words[:24]) + (" …" if len(words) > 24 else "")
        text = f"(local model, offline) You said: {summary}. This is {len(messages)} message(s) into our conversation."
        prompt_tokens = sum(count_tokens(m.content) for m in messages)
        return ProviderAnswer(text=text, model=model, prompt_tokens=prompt_tokens, completion_tokens=count_tokens(text))
