import pytest

from common.errors import NotFound
from imagegen.pricing import ImagePricing

pytestmark = pytest.mark.unit

PRICING = ImagePricing(default_model="owner/fast", default_price=5, by_model={"owner/good": 12})


def test_no_model_means_the_default_at_the_default_price() -> None:
    assert PRICING.resolve(None) == "owner/fast"
    assert PRICING.price("owner/fast") == 5


def test_listed_models_have_their_own_price() -> None:
    assert PRICING.resolve("owner/good") == "owner/good"
    assert PRICING.price("owner/good") == 12
    assert PRICING.models == ["owner/fast", "owner/good"]


def test_a_model_without_a_price_is_refused_naming_the_field() -> None:
    with pytest.raises(NotFound) as refused:
        PRICING.resolve("someone/expensive")
    assert refused.value.extra["errors"][0]["field"] == "body.model"
    assert "owner/fast, owner/good" in refused.value.detail
