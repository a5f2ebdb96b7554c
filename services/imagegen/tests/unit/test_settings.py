import pytest
from pydantic import ValidationError

from imagegen.settings import ImagegenSettings

pytestmark = pytest.mark.unit

REAL = {
    "amqp_url": "amqp://u:s3cr3t-pw@broker/",
    "mongodb_url": "mongodb://app:An0therOne@mongo/",
    "environment": "production",
}


def test_output_files_come_over_https_from_replicates_delivery_hosts_by_default() -> None:
    settings = ImagegenSettings(**REAL)  # type: ignore[arg-type]
    assert settings.image_output_hosts == ["replicate.delivery", "*.replicate.delivery"]
    assert settings.image_output_schemes == ["https"]


def test_outside_development_neither_http_nor_an_internal_address_may_be_allowed() -> None:
    with pytest.raises(ValidationError, match="http only in development"):
        ImagegenSettings(**REAL, image_output_schemes="https,http")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="non-public addresses only in development"):
        ImagegenSettings(**REAL, image_output_hosts="replicate.delivery, 169.254.169.254")  # type: ignore[arg-type]
    development = ImagegenSettings(image_output_hosts="127.0.0.1", image_output_schemes="http")  # type: ignore[arg-type]
    assert (development.image_output_hosts, development.image_output_schemes) == (["127.0.0.1"], ["http"])
