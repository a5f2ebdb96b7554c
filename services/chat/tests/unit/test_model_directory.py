"""What ListModels answers (chat/model_directory.py): the priced chat models in failover order,
then the embedding models."""

from __future__ import annotations

import pytest

from chat.catalog import ModelCatalog
from chat.credit_prices import ModelPrice
from chat.embedding_catalog import EmbeddingCatalog
from chat.model_directory import ModelDirectory
from chat.provider_costs import CostTable, UsdPrice
from chat.providers.local_embeddings import LocalEmbeddings
from chat.providers.openai_embeddings import OpenAIEmbeddings
from common.contracts import Envelope, ListModels
from tests.support.chat_fakes import ScriptedProvider

pytestmark = pytest.mark.unit

ASKED = Envelope[ListModels](type="ListModels", request_id="r", payload=ListModels())


def chat_catalog() -> ModelCatalog:
    gemini, openai = ScriptedProvider("gemini"), ScriptedProvider("openai", prefixes=("gpt-",))
    return ModelCatalog.build(
        [gemini, openai],
        default_model=None,
        default_price=ModelPrice(per_request=2),
        prices={"gemini-2.5-flash": ModelPrice(), "gpt-4o": ModelPrice(per_request=5)},
        costs=CostTable({m: UsdPrice(input_per_1m=1, output_per_1m=1) for m in ("gemini-default", "openai-default")}),
    )


async def test_only_priced_chat_models_are_listed_in_failover_order_then_the_embedding_models() -> None:
    embeddings = EmbeddingCatalog.build(
        [OpenAIEmbeddings(api_key="k", base_url=None, default_model="text-embedding-3-small", timeout_s=1)],
        default_price=ModelPrice(),
        prices={},
        costs=CostTable({}),
    )
    listed = await ModelDirectory(chat_catalog(), embeddings).list_models(ASKED)
    assert [(m.id, m.provider) for m in listed.models] == [
        ("gemini-default", "gemini"),  # its default, then the priced ones it serves
        ("gemini-2.5-flash", "gemini"),
        ("openai-default", "openai"),
        ("gpt-4o", "openai"),
    ]
    assert listed.default == "gemini-default"
    assert [(m.id, m.provider) for m in listed.embedding_models] == [("text-embedding-3-small", "openai")]


async def test_without_embeddings_none_are_listed() -> None:
    assert (await ModelDirectory(chat_catalog(), EmbeddingCatalog([])).list_models(ASKED)).embedding_models == []
    local = EmbeddingCatalog.build([LocalEmbeddings()], default_price=ModelPrice(), prices={}, costs=CostTable({}))
    assert [m.id for m in (await ModelDirectory(chat_catalog(), local).list_models(ASKED)).embedding_models] == [
        "local-embed-1"
    ]
