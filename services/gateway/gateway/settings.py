from __future__ import annotations

from pathlib import Path

from pydantic import Field

from common.settings import CommonSettings


class GatewaySettings(CommonSettings):
    service_name: str = "gateway"
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
