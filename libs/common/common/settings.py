"""Settings base every service extends: environment variables only, secrets as SecretStr.

The environment is `production` unless said otherwise (`make run` and the tests say
`development`). Outside development a placeholder secret (the local broker's guest password,
"changeme", ...), a broker URL without credentials and a MongoDB URL without credentials (or
none at all) are refused at start-up, so a production deploy cannot run on defaults by accident.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "staging", "production"]

PLACEHOLDER_SECRETS = frozenset({"", "guest", "changeme", "change-me", "secret", "password", "placeholder", "dev"})


def _url_password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


class CommonSettings(BaseSettings):
    """What every service reads: where the broker, cache and database are, and how to log."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    environment: Environment = Field(
        "production",
        description="development allows local defaults and placeholder secrets (and the development token "
        "issuer); staging and production refuse them and need credentials in AMQP_URL and MONGODB_URL.",
    )
    service_name: str = Field("service", description="Name in logs, traces and metrics.")
    amqp_url: SecretStr = Field(SecretStr("amqp://guest:guest@127.0.0.1:5672/"), description="RabbitMQ URL.")
    redis_url: SecretStr = Field(SecretStr("redis://127.0.0.1:6379/0"), description="Redis URL.")
    redis_cluster: bool = Field(
        False,
        description="REDIS_URL names one node of a Redis Cluster (database 0): the client learns the other nodes "
        "from it and sends each key to the node serving its hash slot.",
    )
    mongodb_url: SecretStr | None = Field(
        None, description="MongoDB URL; unset in development means the local mongoeco server started by `make run`."
    )
    mongodb_database: str = Field("aisaas", description="MongoDB database name.")
    bus_namespace: str = Field(
        "aisaas",
        pattern=r"^[a-z0-9][a-z0-9-]{0,40}$",
        description="Prefix of every exchange, queue and Redis key, so stacks sharing a broker never collide.",
    )
    bus_prefetch: int = Field(16, ge=1, le=1000, description="Unacked messages a consumer holds at once.")
    credits_partitions: int = Field(
        1,
        ge=1,
        le=256,
        description="Partitions of the users' state: the credits ledger's accounts, and the chat threads (each "
        "partition owned by one credits and one chat replica at a time); every service must agree on it, and "
        "changing it needs every credits and chat replica stopped first.",
    )
    bus_max_attempts: int = Field(
        5,
        ge=1,
        le=100,
        description="Deliveries of a message whose consumer died before acking it, or that met a dependency down "
        "with nobody waiting for its reply, before it goes to the dead-letter queue (a handler's unexpected error "
        "dead-letters it at once, after answering 500).",
    )
    bus_retry_backoff_s: float = Field(
        0.5,
        gt=0,
        le=60,
        description="How long a message nobody waits for is held, after its dependency (the store, Redis) was "
        "found down, before it goes back to its queue for another delivery; doubles with each attempt.",
    )
    bus_retry_backoff_max_s: float = Field(
        8.0, gt=0, le=600, description="The longest such hold, however many attempts came before."
    )
    bus_publishers: dict[str, str] = Field(
        default_factory=lambda: {s: s for s in ("chat", "credits", "gateway", "imagegen", "ops")},
        description="Broker user -> the service it stands for, JSON. A consumer believes a message's publisher "
        "only from its broker-verified AMQP user_id, through this map (see `common.bus.trust`).",
    )
    log_level: str = Field("INFO", description="Python log level.")
    slow_request_ms: float = Field(
        1000.0,
        ge=0,
        description="A request or message handled slower than this is logged at INFO; faster successes only at "
        "DEBUG (errors are always logged; the gateway logs 4xx at INFO and 5xx at WARNING). 0 logs every one.",
    )
    shutdown_grace_s: float = Field(
        20.0,
        ge=0,
        le=300,
        description="On SIGTERM: how long a service may finish what it holds (a consumer its messages in hand, "
        "the gateway its requests and streams) before it exits; what is left is handed back to the queue. "
        "Keep it below the orchestrator's kill deadline (Kubernetes: terminationGracePeriodSeconds, 30 s).",
    )
    metrics_port: int = Field(
        0, ge=0, le=65535, description="Port of the /metrics endpoint of a consuming service; 0 turns it off."
    )
    metrics_host: str = Field("127.0.0.1", description="Address the /metrics endpoint binds.")

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> CommonSettings:
        if self.environment == "development":
            return self
        for name, value in self:
            if not isinstance(value, SecretStr):
                continue
            raw = value.get_secret_value()
            candidates = [raw] if "://" not in raw else [_url_password(raw) or ""]
            if "://" in raw and _url_password(raw) is None:
                continue  # a URL without a password (e.g. an auth-less Redis) carries no secret
            if any(c.strip().lower() in PLACEHOLDER_SECRETS for c in candidates):
                raise ValueError(f"{name.upper()} holds a placeholder secret; set a real one in {self.environment}")
        if not _has_credentials(self.amqp_url.get_secret_value()):
            raise ValueError(f"AMQP_URL has no credentials; give the service its own broker user in {self.environment}")
        if self.mongodb_url is None or not _has_credentials(self.mongodb_url.get_secret_value()):
            raise ValueError(
                f"MONGODB_URL must name the database server with credentials in {self.environment} "
                "(user:password@, or an authMechanism such as MONGODB-X509)"
            )
        return self


def _has_credentials(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return bool(parts.username and parts.password) or "authmechanism=" in parts.query.lower()
