from __future__ import annotations

from pydantic import Field

from common.settings import CommonSettings


class CreditsSettings(CommonSettings):
    service_name: str = "credits"
    metrics_port: int = 9102
    signup_credits: int = Field(20, ge=0, description="Free credits a new account gets, exactly once.")
    reservation_ttl_s: float = Field(
        300.0, gt=0, description="Life of an unresolved reservation; keep it above MAX_REQUEST_TIMEOUT_S."
    )
    sweep_interval_s: float = Field(5.0, gt=0, description="How often abandoned reservations are looked for.")
    journal_flush_interval_s: float = Field(
        0.2, gt=0, description="Longest wait before new journal entries are copied out and announced."
    )
    balance_cache_ttl_s: int = Field(300, ge=1, description="Life of a cached balance in Redis.")
