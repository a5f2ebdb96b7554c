"""OpenAI embeddings through the official `openai` SDK (`embeddings.create`), pointed at
`OPENAI_BASE_URL` when set. Vectors are asked for in `base64`, the SDK's own default on the
wire, and kept as they come (the SDK decodes them only when no format is named): the reply
carries them in that form. Retries and timeouts belong to `chat.failover`, as for chat."""

from __future__ import annotations

from typing import Any

from chat.providers.base import ProviderError
from chat.providers.embedding import EmbeddingAnswer, EmbeddingRequest, pack
from chat.providers.openai import NAME, client, provider_error

# The models' full vector lengths, which `dimensions` may shorten (OpenAI's model pages).
SIZES = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072}


class OpenAIEmbeddings:
    name = NAME

    def __init__(self, *, api_key: str, base_url: str | None, default_model: str, timeout_s: float) -> None:
        self.default_model = default_model
        self._client = client(api_key=api_key, base_url=base_url, timeout_s=timeout_s)

    def owns(self, model: str) -> bool:
        return model.startswith("text-embedding-")

    def model_for(self, requested: str) -> str:
        return requested

    def max_dimensions(self, model: str) -> int | None:
        return SIZES.get(model)

    async def embed(self, request: EmbeddingRequest) -> EmbeddingAnswer:
        params: dict[str, Any] = {"model": request.model, "input": list(request.inputs), "encoding_format": "base64"}
        if request.dimensions is not None:
            params["dimensions"] = request.dimensions
        try:
            reply = await self._client.embeddings.create(**params)
            data = sorted(reply.data, key=lambda d: d.index)
            # A base64 string as asked; a list of floats if a server ignored the format.
            vectors = tuple(d.embedding if isinstance(d.embedding, str) else pack(d.embedding) for d in data)
            tokens = reply.usage.prompt_tokens if reply.usage else 0
        except Exception as exc:
            raise provider_error(exc) from exc
        if len(vectors) != len(request.inputs) or not all(vectors):
            raise ProviderError(NAME, f"{len(vectors)} vectors for {len(request.inputs)} inputs", retryable=True)
        return EmbeddingAnswer(vectors=vectors, model=reply.model or request.model, prompt_tokens=tokens)

    async def aclose(self) -> None:
        await self._client.close()
