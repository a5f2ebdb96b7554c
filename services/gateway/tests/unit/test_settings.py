import base64

import pytest
from pydantic import ValidationError

from gateway.settings import GatewaySettings

pytestmark = pytest.mark.unit

REAL = {
    "amqp_url": "amqp://u:s3cr3t-pw@broker/",
    "mongodb_url": "mongodb://app:An0therOne@mongo/",
    "environment": "production",
}
WEB = "https://app.example.com"


def test_outside_development_clerk_and_its_authorized_parties_are_required() -> None:
    with pytest.raises(ValidationError, match="CLERK_ISSUER"):
        GatewaySettings(**REAL)
    with pytest.raises(ValidationError, match="CLERK_AUTHORIZED_PARTIES"):
        GatewaySettings(**REAL, clerk_issuer="https://clerk.example.com")
    settings = GatewaySettings(**REAL, clerk_issuer="https://clerk.example.com", clerk_authorized_parties=WEB)  # type: ignore[arg-type]
    assert settings.clerk_jwks == "https://clerk.example.com/.well-known/jwks.json"


def test_lists_come_comma_separated_and_budgets_are_checked() -> None:
    settings = GatewaySettings(
        clerk_issuer="https://c.example.com",
        clerk_authorized_parties="https://a.example.com/, https://b.example.com",  # type: ignore[arg-type]
        cors_origins="https://a.example.com",  # type: ignore[arg-type]
    )
    assert settings.clerk_authorized_parties == ["https://a.example.com", "https://b.example.com"]
    assert settings.cors_origins == ["https://a.example.com"]
    with pytest.raises(ValidationError, match="not a rate limit"):
        GatewaySettings(rate_limit_ip="lots")
    with pytest.raises(ValidationError, match="unknown rate-limit groups"):
        GatewaySettings(rate_limits={"videos": {"user": "1/minute"}})
    with pytest.raises(ValidationError, match="needs CLERK_ISSUER"):
        GatewaySettings(clerk_jwks_url="https://c.example.com/jwks")


def test_the_consoles_clerk_frontend_api_comes_from_the_publishable_key_or_the_proxy_url() -> None:
    key = "pk_live_" + base64.b64encode(b"clerk.app.example.com$").decode()
    settings = GatewaySettings(clerk_issuer="https://clerk.app.example.com", clerk_publishable_key=key)
    assert settings.clerk_frontend_api == "https://clerk.app.example.com"
    proxied = settings.model_copy(update={"clerk_proxy_url": "https://app.example.com/__clerk"})
    assert proxied.clerk_frontend_api == "https://app.example.com"
    assert GatewaySettings().clerk_frontend_api is None


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("pk_test_" + base64.b64encode(b"clerk.example.com$").decode(), "needs CLERK_ISSUER"),
        ("sk_test_abc", "String should match pattern"),
        ("pk_test_" + base64.b64encode(b"no dollar at the end").decode(), "does not encode"),
        ("pk_test_" + base64.b64encode(b"<script>$").decode(), "does not encode"),
    ],
)
def test_a_publishable_key_that_names_no_frontend_api_host_is_refused(key: str, why: str) -> None:
    issuer = {} if why == "needs CLERK_ISSUER" else {"clerk_issuer": "https://clerk.example.com"}
    with pytest.raises(ValidationError, match=why):
        GatewaySettings(clerk_publishable_key=key, **issuer)  # type: ignore[arg-type]
