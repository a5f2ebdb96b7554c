from __future__ import annotations

import pytest

from chat.credit_prices import ModelPrice
from chat.embedding_catalog import EmbeddingCatalog
from chat.provider_costs import CostTable
from chat.providers.embedding import EmbeddingRequest
from chat.providers.local_embeddings import LocalEmbeddings
from chat.providers.openai_embeddings import OpenAIEmbeddings
from common.errors import BadRequest, NotFound

pytestmark = pytest.mark.unit


def openai_embeddings() -> OpenAIEmbeddings:
    return OpenAIEmbeddings(api_key="k", base_url=None, default_model="text-embedding-3-small", timeout_s=1)


def test_offers_each_default_and_the_priced_models_a_provider_serves() -> None:
    catalog = EmbeddingCatalog.build(
        [openai_embeddings(), LocalEmbeddings()],
        default_price=ModelPrice(per_request=0, per_1k_tokens=1),
        prices={"text-embedding-3-large": ModelPrice(per_request=1, per_1k_tokens=5), "gpt-4o": ModelPrice()},
        costs=CostTable({}),
    )
    assert catalog.names == ["text-embedding-3-small", "text-embedding-3-large", "local-embed-1"]
    with pytest.raises(NotFound):
        catalog.resolve("gpt-4o")


def test_held_at_one_token_a_byte_charged_for_the_tokens_counted_never_above_the_hold() -> None:
    catalog = EmbeddingCatalog.build(
        [openai_embeddings()],
        default_price=ModelPrice(per_request=1, per_1k_tokens=100),
        prices={},
        costs=CostTable({}),
    )
    request = EmbeddingRequest(inputs=("a" * 100, "é" * 50), model="text-embedding-3-small")
    assert catalog.reservation(request) == 1 + 20  # 200 bytes at 100 credits per 1,000
    assert catalog.charge(request, prompt_tokens=30) == 1 + 3
    assert catalog.charge(request, prompt_tokens=10_000) == 21


def test_dimensions_beyond_the_models_own_are_refused() -> None:
    catalog = EmbeddingCatalog.build(
        [openai_embeddings(), LocalEmbeddings()], default_price=ModelPrice(), prices={}, costs=CostTable({})
    )
    assert catalog.resolve("text-embedding-3-small", dimensions=1536).model == "text-embedding-3-small"
    with pytest.raises(BadRequest, match="at most 1536"):
        catalog.resolve("text-embedding-3-small", dimensions=1537)
    assert catalog.resolve("local-embed-1", dimensions=4096).provider == "local"


def test_no_more_numbers_than_one_reply_carries() -> None:
    large = {"text-embedding-3-large": ModelPrice()}
    catalog = EmbeddingCatalog.build(
        [openai_embeddings(), LocalEmbeddings()], default_price=ModelPrice(), prices=large, costs=CostTable({})
    )
    assert catalog.resolve("text-embedding-3-large", inputs=2048, dimensions=2048)
    assert catalog.resolve("text-embedding-3-large", inputs=1365)
    with pytest.raises(BadRequest, match="fewer inputs") as refused:
        catalog.resolve("text-embedding-3-large", inputs=1366)
    assert refused.value.extra["errors"][0]["field"] == "body.input"
    assert catalog.resolve("local-embed-1", inputs=2048)  # its own length is its provider's concern
    with pytest.raises(BadRequest):
        catalog.resolve("local-embed-1", inputs=2048, dimensions=4096)


def test_a_model_without_a_usd_price_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="text-embedding-9"):
        EmbeddingCatalog.build(
            [openai_embeddings()],
            default_price=ModelPrice(),
            prices={"text-embedding-9": ModelPrice()},
            costs=CostTable({}),
        )
