from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from common.contracts import ImageSize
from common.settings import CommonSettings
from imagegen.providers.delivery import DEFAULT_HOSTS, as_address, public


class ImagegenSettings(CommonSettings):
    service_name: str = "imagegen"
    metrics_port: int = 9103

    # The providers' own variables, as their SDKs name them.
    replicate_api_token: SecretStr | None = Field(
        None, description="Replicate API token; with none (and IMAGE_PROVIDER=auto) images are drawn locally."
    )
    replicate_base_url: str | None = Field(None, description="Replicate API base URL; unset means the real API.")
    cloudinary_url: SecretStr | None = Field(
        None,
        description="cloudinary://KEY:SECRET@CLOUD[?upload_prefix=URL]; with none (and IMAGE_STORAGE=auto) "
        "images are kept under IMAGE_DATA_DIR.",
    )

    image_provider: Literal["auto", "replicate", "local"] = Field(
        "auto", description="Who draws: auto = Replicate when REPLICATE_API_TOKEN is set, else the local generator."
    )
    image_storage: Literal["auto", "cloudinary", "local"] = Field(
        "auto", description="Where images are kept: auto = Cloudinary when CLOUDINARY_URL is set, else local files."
    )
    image_default_model: str | None = Field(
        None, description="Model when a request names none; unset: the provider's default."
    )
    image_price: int = Field(5, ge=1, description="Credits per image for the default model.")
    image_model_prices: dict[str, int] = Field(
        default_factory=dict,
        description='Credits per image by model, JSON: {"black-forest-labs/flux-dev": 10}. '
        "Only the default model and the models listed here may be requested.",
    )
    image_default_size: ImageSize = Field("1024x1024", description="Size when a request names none.")
    image_data_dir: Path = Field(
        Path(".data/images"), description="Where local storage keeps image files (the gateway serves them)."
    )
    image_cloudinary_folder: str = Field(
        "aisaas", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Cloudinary folder under which each user has one."
    )
    image_concurrency: int = Field(8, ge=1, le=256, description="Jobs one imagegen process runs at once.")
    image_http_timeout_s: float = Field(
        30.0, gt=0, le=600, description="Timeout of one call to Replicate, to Cloudinary or for the output file."
    )
    image_poll_initial_s: float = Field(0.25, gt=0, description="First wait between polls of a prediction.")
    image_poll_max_s: float = Field(5.0, gt=0, description="Longest wait between polls (the wait doubles up to it).")
    image_max_bytes: int = Field(25_000_000, ge=1024, description="Largest generated file accepted.")
    image_output_hosts: Annotated[list[str], NoDecode] = Field(
        list(DEFAULT_HOSTS),
        min_length=1,
        description="Hosts a provider's output file may be fetched from, comma-separated: names (`*.` for any "
        "subdomain; each must resolve to public addresses only) or addresses (trusted as listed; a non-public "
        "one only in development).",
    )
    image_output_schemes: Annotated[list[Literal["https", "http", "data"]], NoDecode] = Field(
        ["https"],
        min_length=1,
        description="URL schemes a provider's output may use, comma-separated: https, data (an inline file), "
        "http (development only).",
    )
    image_lease_s: float = Field(
        60.0, gt=0, description="A running job's lease; a job whose worker stops renewing it is taken over."
    )
    image_sweep_interval_s: float = Field(
        5.0, gt=0, description="How often stalled jobs are dispatched again and orphaned files removed."
    )
    local_image_latency_s: float = Field(
        0.0, ge=0, le=600, description="Simulated drawing time of the offline `local` generator."
    )

    @field_validator("image_output_hosts", "image_output_schemes", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _outputs_stay_public(self) -> ImagegenSettings:
        if self.environment == "development":
            return self
        if "http" in self.image_output_schemes:
            raise ValueError("IMAGE_OUTPUT_SCHEMES may include http only in development")
        private = [h for h in self.image_output_hosts if (a := as_address(h)) is not None and not public(a)]
        if private:
            raise ValueError(f"IMAGE_OUTPUT_HOSTS may list non-public addresses only in development: {private}")
        return self
