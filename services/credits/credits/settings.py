from __future__ import annotations

from pydantic import Field, model_validator

from common.settings import CommonSettings


class CreditsSettings(CommonSettings):
    service_name: str = "credits"
    metrics_port: int = 9102
    # Operations that arrive together are committed together: a deep prefetch feeds the batches.
    bus_prefetch: int = Field(256, ge=1, le=1000, description="Unacked messages a consumer holds at once.")
    signup_credits: int = Field(20, ge=0, description="Free credits a new account gets, exactly once.")
    reservation_ttl_s: float = Field(
        300.0, gt=0, description="Life of an unresolved reservation; keep it above MAX_REQUEST_TIMEOUT_S."
    )
    sweep_interval_s: float = Field(5.0, gt=0, description="How often abandoned reservations are looked for.")
    checkpoint_interval_s: float = Field(
        10.0,
        gt=0,
        description="How often the accounts that changed (and a digest of the reservations settled) are written; "
        "a load after a crash replays the log written since.",
    )
    replay_window_s: float = Field(
        900.0,
        gt=0,
        description="How long a settled reservation is remembered, so a repeated reserve, commit or release "
        "returns the first result; at least twice RESERVATION_TTL_S.",
    )
    ledger_max_batch: int = Field(512, ge=1, le=10_000, description="Most operations committed in one page.")
    ledger_linger_ms: float = Field(
        20.0,
        ge=0,
        le=1000,
        description="Longest a commit or release nobody waits for waits for other operations to share its "
        "page (a reserve, grant, read or awaited settlement starts the page at once).",
    )

    @model_validator(mode="after")
    def _window_covers_the_ttl(self) -> CreditsSettings:
        if self.replay_window_s < 2 * self.reservation_ttl_s:
            raise ValueError("REPLAY_WINDOW_S must be at least twice RESERVATION_TTL_S")
        return self
