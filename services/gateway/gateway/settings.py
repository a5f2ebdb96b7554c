from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from common.contracts import Role
from common.settings import CommonSettings
from gateway.ratelimit.policy import GROUPS, parse_budget


def _default_rate_limits() -> dict[str, dict[Role, str]]:
    return {
        "chat": {"user": "30/minute", "subscriber": "120/minute", "admin": "600/minute"},
        "images": {"user": "6/minute", "subscriber": "30/minute", "admin": "120/minute"},
    }


class GatewaySettings(CommonSettings):
    service_name: str = "gateway"
    metrics_port: int = 9100
    host: str = Field("127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port the HTTP server binds.")
    max_body_bytes: int = Field(256 * 1024, ge=1024, description="Largest request body accepted; larger gets 413.")
    request_timeout_s: float = Field(
        30.0, gt=0, description="Deadline of a request when the client sends no X-Request-Timeout."
    )
    max_request_timeout_s: float = Field(
        120.0, gt=0, description="Largest deadline a client may ask for with X-Request-Timeout."
    )
    dev_issuer: str = Field(
        "urn:aisaas:dev-issuer", description="`iss` of tokens from the local development issuer (development only)."
    )
    dev_issuer_key_file: Path = Field(
        Path(".data/dev-issuer-key.pem"), description="RSA private key of the development issuer; created on first use."
    )
    jwt_leeway_s: int = Field(30, ge=0, le=300, description="Clock skew tolerated on exp/nbf.")

    # -- Clerk (production identity) -----------------------------------------------------
    clerk_issuer: str | None = Field(
        None,
        description="`iss` of Clerk session tokens (the Frontend API URL); setting it (or CLERK_JWKS_URL) turns "
        "Clerk on and the development issuer off.",
    )
    clerk_jwks_url: str | None = Field(
        None, description="Clerk JWKS URL; default CLERK_ISSUER + /.well-known/jwks.json."
    )
    clerk_authorized_parties: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed as a token's `azp` (comma-separated); required outside development.",
    )
    clerk_webhook_secret: SecretStr | None = Field(
        None, description="Svix signing secret (whsec_...) of the Clerk webhook endpoint."
    )
    clerk_jwks_ttl_s: float = Field(3600.0, gt=0, description="Life of the cached Clerk JWKS.")
    clerk_jwks_min_refresh_s: float = Field(
        30.0, ge=0, description="Least time between two JWKS fetches caused by tokens with an unknown `kid`."
    )
    clerk_publishable_key: str | None = Field(
        None,
        pattern=r"^pk_(test|live)_[A-Za-z0-9+/]+={0,2}$",
        description="Clerk publishable key (pk_test_... or pk_live_...): the web console then signs in with Clerk "
        "(clerk-js, bundled); unset, it offers the development sign-in. Needs CLERK_ISSUER.",
    )
    clerk_proxy_url: str | None = Field(
        None,
        pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$",
        description="Where the web console's clerk-js calls the Frontend API when not at the host the publishable "
        "key names (a Clerk proxy); the page's Content-Security-Policy allows that origin.",
    )
    user_cache_ttl_s: float = Field(
        5.0, ge=0, description="How long a gateway trusts its copy of a user's role; a role change shows within it."
    )

    # -- traffic control -------------------------------------------------------------------
    rate_limit_ip: str = Field(
        "600/minute", description="Budget per client IP over every request, checked before authentication."
    )
    rate_limits: dict[str, dict[Role, str]] = Field(
        default_factory=_default_rate_limits,
        description="Per-user budgets of POSTs to /v1/chat* and /v1/images*, by role (JSON).",
    )
    rate_limit_fallback: Literal["local", "closed"] = Field(
        "local",
        description="With Redis unreachable: `local` keeps serving under an in-process limiter per gateway; "
        "`closed` refuses limited requests with 503.",
    )
    forwarded_allow_ips: str = Field(
        "",
        description="Proxies (addresses or CIDRs, comma-separated) whose X-Forwarded-For names the client IP; "
        "empty: none. `*` (any peer) only in development: it lets every client name its own IP.",
    )
    idempotency_ttl_s: int = Field(86400, ge=60, description="How long a response is kept for Idempotency-Key replays.")
    idempotency_max_bytes_per_user: int = Field(
        16 * 1024 * 1024,
        ge=64 * 1024,
        description="What one user's kept responses may hold in Redis (each also costs 1 KiB); past it a response "
        "is kept as a short 409 that retries get instead.",
    )
    max_streams_per_user: int = Field(
        5, ge=1, description="Event streams (image job progress) one user may hold open on one gateway at once."
    )
    stream_write_timeout_s: float = Field(
        5.0,
        gt=0,
        le=60,
        description="Longest one event of a chat stream waits for a client that stopped reading; the stream then "
        "ends and only what was written is charged. Keep it below the chat service's CHAT_STREAM_ACK_TIMEOUT_S.",
    )
    stream_buffer_chunks: int = Field(
        1024,
        ge=16,
        description="Chunks of one chat stream the gateway holds for its client; a client further behind is cut "
        "off and charged for what was written.",
    )
    max_prompt_chars: int = Field(
        48_000,
        ge=1,
        description="Longest prompt accepted (all message texts of a chat, or an image prompt); 413 above.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Browser origins allowed by CORS (comma-separated); empty: no CORS."
    )

    # -- images ------------------------------------------------------------------------------
    image_job_timeout_s: float = Field(
        180.0,
        gt=0,
        description="Deadline of an image job (X-Request-Timeout may shorten it); keep it below RESERVATION_TTL_S.",
    )
    image_data_dir: Path = Field(
        Path(".data/images"), description="Where imagegen's local storage keeps files; served at /files/images."
    )

    web_dist_dir: Path = Field(
        Path("web/dist"), description="The built web console (make web), served at `/` when its index.html exists."
    )

    @field_validator("clerk_authorized_parties", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        return value

    @field_validator("rate_limit_ip")
    @classmethod
    def _budget(cls, value: str) -> str:
        parse_budget(value)
        return value

    @field_validator("rate_limits")
    @classmethod
    def _budgets(cls, value: dict[str, dict[Role, str]]) -> dict[str, dict[Role, str]]:
        unknown = set(value) - set(GROUPS)
        if unknown:
            raise ValueError(f"unknown rate-limit groups {sorted(unknown)}; known: {sorted(GROUPS)}")
        for by_role in value.values():
            for budget in by_role.values():
                parse_budget(budget)
        return value

    @model_validator(mode="after")
    def _clerk(self) -> GatewaySettings:
        if self.clerk_publishable_key and not self.clerk_issuer:
            raise ValueError("CLERK_PUBLISHABLE_KEY needs CLERK_ISSUER: the gateway must verify the tokens it leads to")
        if self.clerk_publishable_key:
            self.clerk_frontend_api  # noqa: B018 (a key that names no host fails here, at start-up)
        if self.clerk_jwks_url and not self.clerk_issuer:
            raise ValueError("CLERK_JWKS_URL needs CLERK_ISSUER: tokens are checked against it")
        if self.environment != "development" and not self.clerk_issuer:
            raise ValueError(f"set CLERK_ISSUER in {self.environment}: without it no token could be verified")
        if self.environment != "development" and "*" in self.forwarded_allow_ips:
            raise ValueError(
                "FORWARDED_ALLOW_IPS may not be `*` outside development: any client could then name its own IP "
                "(a fresh per-IP budget per request); list the proxies' addresses or CIDRs"
            )
        if self.environment != "development" and not self.clerk_authorized_parties:
            raise ValueError(
                f"set CLERK_AUTHORIZED_PARTIES in {self.environment}: without it a token minted for any other "
                "site of the same Clerk instance would be accepted (its `azp` unchecked)"
            )
        return self

    @property
    def clerk_enabled(self) -> bool:
        return self.clerk_issuer is not None

    @property
    def clerk_frontend_api(self) -> str | None:
        """The origin the console's clerk-js calls: CLERK_PROXY_URL's, else the host the publishable key names."""
        if self.clerk_proxy_url:
            parts = urlsplit(self.clerk_proxy_url)
            return f"{parts.scheme}://{parts.netloc}"
        if not self.clerk_publishable_key:
            return None
        encoded = self.clerk_publishable_key.split("_", 2)[2]
        try:
            host = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True).decode()
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError("CLERK_PUBLISHABLE_KEY does not encode a Frontend API host") from exc
        if not re.fullmatch(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?\$", host):
            raise ValueError("CLERK_PUBLISHABLE_KEY does not encode a Frontend API host")
        return "https://" + host[:-1]

    @property
    def clerk_jwks(self) -> str | None:
        if self.clerk_issuer is None:
            return None
        return self.clerk_jwks_url or self.clerk_issuer.rstrip("/") + "/.well-known/jwks.json"
