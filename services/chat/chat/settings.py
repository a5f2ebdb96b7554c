from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from chat.credit_prices import ModelPrice
from chat.provider_costs import UsdPrice
from common.settings import CommonSettings


class ChatSettings(CommonSettings):
    service_name: str = "chat"
    metrics_port: int = 9101
    default_model: str | None = Field(
        None,
        description="Model used when a request names none (it must be offered); unset: the first provider's default.",
    )
    chat_price: ModelPrice = Field(
        default_factory=ModelPrice,
        description='Price of each provider\'s default model, JSON: {"per_request": 1, "per_1k_tokens": 0, '
        '"max_tokens": 4096}; `max_tokens` caps what a request may ask for.',
    )
    chat_model_prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description='Prices by model, JSON: {"gpt-4o": {"per_request": 2}}. Only these and each provider\'s default '
        "model may be requested; each needs a USD price too.",
    )
    local_latency_s: float = Field(
        0.0, ge=0, le=60, description="Simulated thinking time of the offline `local` provider."
    )
    # The SDKs' own variable names, so a key exported for the SDK configures the service too.
    gemini_api_key: SecretStr | None = Field(None, description="Gemini API key; unset: Gemini is not used.")
    google_gemini_base_url: str | None = Field(None, description="Gemini API base URL; unset: Google's.")
    gemini_model: str = Field("gemini-2.5-flash", description="Gemini's default model.")
    openai_api_key: SecretStr | None = Field(None, description="OpenAI API key; unset: OpenAI is not used.")
    openai_base_url: str | None = Field(None, description="OpenAI API base URL; unset: OpenAI's.")
    openai_model: str = Field("gpt-4o-mini", description="OpenAI's default model.")
    openai_embedding_model: str = Field("text-embedding-3-small", description="OpenAI's default embedding model.")
    gemini_embedding_model: str = Field("gemini-embedding-001", description="Gemini's default embedding model.")
    embedding_price: ModelPrice = Field(
        default_factory=lambda: ModelPrice(per_request=0, per_1k_tokens=1),
        description='Price of each provider\'s default embedding model, JSON: {"per_request": 0, "per_1k_tokens": 1} '
        "(the inputs' tokens; `max_tokens` does not apply).",
    )
    embedding_model_prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description='Prices by embedding model, JSON: {"text-embedding-3-large": {"per_1k_tokens": 5}}. Only these '
        "and each provider's default embedding model may be requested; each needs a USD price too.",
    )
    chat_attempt_timeout_s: float = Field(
        10.0, gt=0, le=300, description="Longest wait for one provider call (for a stream: its first piece)."
    )
    chat_retry_attempts: int = Field(2, ge=1, le=10, description="Calls per provider for retryable failures.")
    chat_retry_backoff_s: float = Field(0.2, ge=0, le=10, description="First backoff between retries; doubles.")
    chat_breaker_failures: int = Field(
        5, ge=1, le=1000, description="Consecutive failures that open a breaker (timeouts count once per user)."
    )
    chat_breaker_cooldown_s: float = Field(30.0, gt=0, le=3600, description="How long an open breaker skips.")
    chat_cache_ttl_s: int = Field(86_400, ge=0, description="Life of a cached answer; 0 turns the cache off.")
    chat_cache_hit_price: int = Field(0, ge=0, le=1_000_000, description="Credits a cached answer costs.")
    chat_cache_scope: Literal["user", "shared"] = Field(
        "user",
        description="Whose answers a request may be served: `user`, the asker's own; `shared`, everyone's "
        "(only for public prompts: a hit tells that someone asked the same).",
    )
    chat_stream_ack_timeout_s: float = Field(
        10.0,
        gt=0,
        le=120,
        description="Longest wait for the gateway to say how much of a stream it delivered; without a report, "
        "everything sent is charged.",
    )
    chat_usage_flush_s: float = Field(
        0.25, ge=0, description="Longest a usage record waits to be stored with others in one document."
    )
    chat_thread_max_turns: int = Field(
        50,
        ge=0,
        le=1000,
        description="Most earlier turns of a thread sent with a threaded request (fewer when the model's "
        "context window is reached first); bounds what one request reads.",
    )
    chat_thread_checkpoint_s: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="How often the replica owning a user's threads writes the turns kept since into their threads' "
        "segments and their counters to the thread documents (one of each per changed thread; until then a turn is "
        "in the log's page, replayed by the next owner: at most this many seconds of pages).",
    )
    chat_turn_linger_s: float = Field(
        0.020,
        ge=0,
        le=1,
        description="Longest a threaded answer's turn waits for those of other threaded requests in hand, so that "
        "one page keeps them all (group commit; it never waits when no other is in hand).",
    )
    chat_usd_prices: dict[str, UsdPrice] = Field(
        default_factory=dict,
        description='USD per 1M tokens by model, JSON: {"gpt-4o": {"input_per_1m": 2.5, "output_per_1m": 10}}.',
    )

    @field_validator("gemini_api_key", "google_gemini_base_url", "openai_api_key", "openai_base_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # Compose and CI pass unset variables through as empty strings: that means "not configured".
        return None if isinstance(value, str) and not value.strip() else value
