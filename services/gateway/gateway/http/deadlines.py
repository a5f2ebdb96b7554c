"""How long a client will wait: the X-Request-Timeout header, bounded, turned into a deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from common.errors import ValidationFailed

# A shorter deadline leaves no time for real work (a provider, a queue): it could only end in 504.
MIN_TIMEOUT_S = 1.0


def deadline_from(header: str | None, *, default_s: float, max_s: float, context: str = "") -> datetime:
    """`default_s` from now, or the header's seconds when it is a number in [MIN_TIMEOUT_S, max_s]."""
    seconds = default_s
    if header is not None:
        try:
            seconds = float(header)
        except ValueError:
            seconds = -1.0
        if not MIN_TIMEOUT_S <= seconds <= max_s:
            raise ValidationFailed(
                f"X-Request-Timeout must be a number of seconds in [{MIN_TIMEOUT_S:g}, {max_s:g}]{context}",
                errors=[{"field": "header.x-request-timeout", "message": "out of range", "type": "value_error"}],
            )
    return datetime.now(UTC) + timedelta(seconds=seconds)
