"""The models this service answers with, for `ListModels` (the gateway's `/v1/models`): the
chat models in failover order, and the embedding models `POST /v1/embeddings` takes."""

from __future__ import annotations

from chat.catalog import ModelCatalog
from chat.embedding_catalog import EmbeddingCatalog
from common.contracts import Envelope, ListModels, ModelList


class ModelDirectory:
    def __init__(self, chat: ModelCatalog, embeddings: EmbeddingCatalog) -> None:
        self._chat = chat
        self._embeddings = embeddings

    async def list_models(self, envelope: Envelope[ListModels]) -> ModelList:
        return ModelList(
            models=self._chat.models,
            default=self._chat.default_model,
            embedding_models=self._embeddings.models,
        )
