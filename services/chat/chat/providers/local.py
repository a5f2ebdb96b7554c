"""An offline provider: answers made on this machine, so the whole system runs without keys.

The answer is a deterministic function of the conversation (same question, same answer),
which also makes it a fair stand-in for cache and deduplication tests. `latency_s` lets a
demo or a crash test give it the slowness of a real model.
"""

from __future__ import annotations

import asyncio

from chat.providers.base import Choice, ProviderAnswer, ProviderRequest, ProviderStream, count_tokens, pieces
from common.contracts import FinishReason

MODEL = "local-echo-1"


class LocalProvider:
    name = "local"
    default_model = MODEL

    def __init__(self, *, latency_s: float = 0.0) -> None:
        self._latency_s = latency_s

    def owns(self, model: str) -> bool:
        return True  # when it is configured it is the only provider, so it answers as any model

    def model_for(self, requested: str) -> str:
        return requested

    async def complete(self, request: ProviderRequest) -> ProviderAnswer:
        if self._latency_s:
            await asyncio.sleep(self._latency_s)
        messages = request.messages
        last_user = next((m.content for m in reversed(messages) if m.role == "user"), messages[-1].content)
        words = last_user.split()
        summary = " ".join(words[:24]) + (" …" if len(words) > 24 else "")
        text = f"(local model, offline) You said: {summary}. This is {len(messages)} message(s) into our conversation."
        finish: FinishReason = "stop"
        if request.max_tokens is not None and count_tokens(text) > request.max_tokens:
            text, finish = " ".join(text.split()[: request.max_tokens]), "length"
        prompt_tokens = max(1, sum(count_tokens(m.content) for m in messages))
        # Tools and response formats are not modelled offline: each of the n choices is the same text.
        more = tuple(Choice(text=text, finish_reason=finish) for _ in range(request.n - 1))
        return ProviderAnswer(
            text=text,
            model=request.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=max(1, count_tokens(text)) * request.n,
            finish_reason=finish,
            more=more,
        )

    async def stream(self, request: ProviderRequest) -> ProviderStream:
        answer = await self.complete(request)
        for piece in pieces(answer.text):
            yield piece
        yield answer

    async def aclose(self) -> None:
        return None
