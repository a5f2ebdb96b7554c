"""Gemini embeddings through Google's official `google-genai` SDK (`models.embed_content`,
which the Gemini Developer API serves as `batchEmbedContents`), pointed at
`GOOGLE_GEMINI_BASE_URL` when set. Where a reply states no token count, the inputs' words are
counted (as for a chat answer without usage). Retries and timeouts belong to `chat.failover`."""

from __future__ import annotations

from google import genai
from google.genai import types

from chat.providers.base import ProviderError, count_tokens
from chat.providers.embedding import EmbeddingAnswer, EmbeddingRequest, pack
from chat.providers.gemini import NAME, _error


class GeminiEmbeddings:
    name = NAME

    def __init__(self, *, api_key: str, base_url: str | None, default_model: str, timeout_s: float) -> None:
        self.default_model = default_model
        options = types.HttpOptions(base_url=base_url, timeout=int(timeout_s * 1000))
        # Kept referenced for the life of the provider: a collected Client closes its pool.
        self._client = genai.Client(api_key=api_key, http_options=options)

    def owns(self, model: str) -> bool:
        return model.startswith(("gemini-embedding-", "models/gemini-embedding-", "text-embedding-004"))

    def model_for(self, requested: str) -> str:
        return requested

    async def embed(self, request: EmbeddingRequest) -> EmbeddingAnswer:
        config = types.EmbedContentConfig(output_dimensionality=request.dimensions)
        try:
            reply = await self._client.aio.models.embed_content(
                model=request.model, contents=list(request.inputs), config=config
            )
            vectors = tuple(pack(e.values or []) for e in reply.embeddings or [])
            usage = reply.usage_metadata
            tokens = (usage.prompt_token_count if usage else None) or sum(count_tokens(t) for t in request.inputs)
        except Exception as exc:
            raise _error(exc) from exc
        if len(vectors) != len(request.inputs) or any(v == "" for v in vectors):
            raise ProviderError(NAME, f"{len(vectors)} vectors for {len(request.inputs)} inputs", retryable=True)
        return EmbeddingAnswer(vectors=vectors, model=request.model, prompt_tokens=tokens)

    async def aclose(self) -> None:
        await self._client.aio.aclose()
        self._client.close()
