"""Gemini embeddings through Google's official `google-genai` SDK (`models.embed_content`,
which the Gemini Developer API serves as `batchEmbedContents`), pointed at
`GOOGLE_GEMINI_BASE_URL` when set. The API takes at most 100 texts a call, so a longer list
goes in parts of 100, at once. Where a reply states no token count, the inputs' words are
counted (as for a chat answer without usage). Retries and timeouts belong to `chat.failover`."""

from __future__ import annotations

import asyncio

from google.genai import types

from chat.providers.base import ProviderError, count_tokens
from chat.providers.embedding import EmbeddingAnswer, EmbeddingRequest, pack
from chat.providers.gemini import NAME, client, provider_error

# The models' full vector lengths, which `output_dimensionality` may shorten (Gemini's model pages).
SIZES = {"gemini-embedding-001": 3072, "text-embedding-004": 768}
# The most requests one batchEmbedContents call may carry: a longer input list is sent in parts.
BATCH = 100


class GeminiEmbeddings:
    name = NAME

    def __init__(self, *, api_key: str, base_url: str | None, default_model: str, timeout_s: float) -> None:
        self.default_model = default_model
        # Kept referenced for the life of the provider: a collected Client closes its pool.
        self._client = client(api_key=api_key, base_url=base_url, timeout_s=timeout_s)

    def owns(self, model: str) -> bool:
        return model.startswith(("gemini-embedding-", "models/gemini-embedding-", "text-embedding-004"))

    def model_for(self, requested: str) -> str:
        return requested

    def max_dimensions(self, model: str) -> int | None:
        return SIZES.get(model.removeprefix("models/"))

    async def embed(self, request: EmbeddingRequest) -> EmbeddingAnswer:
        parts = [request.inputs[i : i + BATCH] for i in range(0, len(request.inputs), BATCH)]
        calls = [asyncio.ensure_future(self._batch(request, part)) for part in parts]
        try:
            answers = await asyncio.gather(*calls)
        except BaseException:
            for call in calls:  # one part failed: the request has, so the others need not finish
                call.cancel()
            raise
        vectors = tuple(vector for part, _ in answers for vector in part)
        return EmbeddingAnswer(vectors=vectors, model=request.model, prompt_tokens=sum(t for _, t in answers))

    async def _batch(self, request: EmbeddingRequest, inputs: tuple[str, ...]) -> tuple[list[str], int]:
        config = types.EmbedContentConfig(output_dimensionality=request.dimensions)
        contents: list[types.PartUnion] = list(inputs)
        try:
            reply = await self._client.aio.models.embed_content(model=request.model, contents=contents, config=config)
            vectors = [pack(e.values or []) for e in reply.embeddings or []]
            usage = reply.usage_metadata
            tokens = (usage.prompt_token_count if usage else None) or sum(count_tokens(t) for t in inputs)
        except Exception as exc:
            raise provider_error(exc) from exc
        if len(vectors) != len(inputs) or any(v == "" for v in vectors):
            raise ProviderError(NAME, f"{len(vectors)} vectors for {len(inputs)} inputs", retryable=True)
        return vectors, tokens

    async def aclose(self) -> None:
        await self._client.aio.aclose()
        self._client.close()
