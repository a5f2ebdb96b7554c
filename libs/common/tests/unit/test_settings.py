import pytest
from pydantic import SecretStr, ValidationError

from common.settings import CommonSettings

pytestmark = pytest.mark.unit


def test_development_accepts_the_local_defaults() -> None:
    settings = CommonSettings(environment="development")
    assert settings.amqp_url.get_secret_value().startswith("amqp://guest:guest@")


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_placeholder_broker_password_is_refused_outside_development(environment: str) -> None:
    with pytest.raises(ValidationError, match="AMQP_URL holds a placeholder secret"):
        CommonSettings(environment=environment)


def test_production_with_real_secrets_starts() -> None:
    settings = CommonSettings(
        environment="production",
        amqp_url=SecretStr("amqp://svc:s3cr3t-Long@rabbit:5672/"),
        redis_url=SecretStr("redis://redis:6379/0"),
        mongodb_url=SecretStr("mongodb://app:An0therOne@mongo:27017/"),
    )
    assert settings.environment == "production"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUS_NAMESPACE", "staging-eu")
    monkeypatch.setenv("BUS_PREFETCH", "3")
    settings = CommonSettings()
    assert (settings.bus_namespace, settings.bus_prefetch) == ("staging-eu", 3)


def test_secrets_do_not_leak_through_repr() -> None:
    settings = CommonSettings(amqp_url=SecretStr("amqp://u:topsecret@h/"))
    assert "topsecret" not in repr(settings)


def test_the_default_is_production_and_it_refuses_the_local_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENVIRONMENT", raising=False)
    assert CommonSettings.model_fields["environment"].default == "production"
    with pytest.raises(ValidationError, match="placeholder secret"):
        CommonSettings()


@pytest.mark.parametrize(
    ("amqp", "mongodb", "refused"),
    [
        ("amqp://rabbit:5672/", "mongodb://app:An0therOne@mongo/", "AMQP_URL has no credentials"),
        ("amqp://svc:s3cr3t-Long@rabbit/", None, "MONGODB_URL must name the database server"),
        ("amqp://svc:s3cr3t-Long@rabbit/", "mongodb://mongo:27017/", "MONGODB_URL must name the database server"),
    ],
)
def test_production_refuses_servers_without_credentials(amqp: str, mongodb: str | None, refused: str) -> None:
    with pytest.raises(ValidationError, match=refused):
        CommonSettings(
            environment="production",
            amqp_url=SecretStr(amqp),
            mongodb_url=SecretStr(mongodb) if mongodb else None,
        )


def test_production_accepts_a_mongodb_auth_mechanism_instead_of_a_password() -> None:
    settings = CommonSettings(
        environment="production",
        amqp_url=SecretStr("amqp://svc:s3cr3t-Long@rabbit/"),
        mongodb_url=SecretStr("mongodb://mongo/?authMechanism=MONGODB-X509&tls=true"),
    )
    assert settings.environment == "production"
