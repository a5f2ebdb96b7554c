"""Chat's failover (`chat.failover`: a share of the deadline, per-attempt timeouts, retries of
retryable failures with backoff, a circuit breaker per provider) for embedding requests, with one
difference: a request goes only to the provider that owns its model. Vectors of two models are
not comparable, so answering with another provider's model would hand back vectors that silently
do not match the ones a client stored. An outage therefore ends in UpstreamFailed (502) and, once
the provider's breaker opens, ServiceUnavailable (503, with `retry_after`)."""

from __future__ import annotations

import asyncio
from typing import Any

from chat.failover import Failover
from chat.providers.embedding import EmbeddingAnswer, EmbeddingProvider, EmbeddingRequest


class EmbeddingFailover(Failover):
    def order(self, model: str) -> list[Any]:
        return [p for p in self.providers if p.owns(model)]

    async def embed(
        self, request: EmbeddingRequest, *, deadline: float, user: str | None = None
    ) -> tuple[EmbeddingProvider, EmbeddingAnswer]:
        """The owner's vectors for `request`, tried until `deadline` (monotonic)."""

        async def attempt(provider: Any, req: Any, limit_s: float) -> EmbeddingAnswer:
            async with asyncio.timeout(limit_s):
                answer: EmbeddingAnswer = await provider.embed(req)
                return answer

        # Chat's failover, typed for chat providers and requests, run over embedding ones (the same
        # name, owns and model_for it relies on).
        return await self._run(request, deadline, attempt, user)  # type: ignore[arg-type,return-value]
