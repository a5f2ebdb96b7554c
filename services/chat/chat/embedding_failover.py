"""Chat's failover (`chat.failover`: a share of the deadline, per-attempt timeouts, retries of
retryable failures with backoff, a circuit breaker per provider) for embedding requests, with one
difference: a request goes only to the provider that owns its model. Vectors of two models are
not comparable, so answering with another provider's model would hand back vectors that silently
do not match the ones a client stored. An outage therefore ends in UpstreamFailed (502) and, once
the provider's breaker opens, ServiceUnavailable (503, with `retry_after`)."""

from __future__ import annotations

import asyncio

from chat.failover import ProviderFailover
from chat.providers.embedding import EmbeddingAnswer, EmbeddingProvider, EmbeddingRequest


class EmbeddingFailover(ProviderFailover[EmbeddingProvider, EmbeddingRequest]):
    def order(self, model: str) -> list[EmbeddingProvider]:
        return [p for p in self.providers if p.owns(model)]

    async def embed(
        self, request: EmbeddingRequest, *, deadline: float, user: str | None = None
    ) -> tuple[EmbeddingProvider, EmbeddingAnswer]:
        """The owner's vectors for `request`, tried until `deadline` (monotonic)."""

        async def attempt(provider: EmbeddingProvider, req: EmbeddingRequest, limit_s: float) -> EmbeddingAnswer:
            async with asyncio.timeout(limit_s):
                return await provider.embed(req)

        return await self._run(request, deadline, attempt, user)
