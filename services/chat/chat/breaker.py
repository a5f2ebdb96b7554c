"""A circuit breaker per provider: after `failures` consecutive failed calls it opens, and the
provider is skipped for `cooldown_s`; then one trial call is let through (half-open), whose
outcome closes it again or re-opens it for another cool-down.

Only the provider's failures count. A timeout may be the request's own doing (a huge prompt or
answer is slow anywhere), so it is charged to the user who sent it (`failed(by=user)`) and
counts once per user in a run of failures: one user alone cannot open the breaker for everyone
(nor re-open it with a trial), while timeouts across `failures` users still open it.

Pure state with an injected clock, so its rules are unit-tested without waiting. Each chat
replica keeps its own: a replica learns a provider is down from its own calls, which is the
usual trade (no shared state to fail or to race on)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(self, *, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold = failures
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False
        self._blamed: set[str] = set()  # users whose timeouts count in the current run

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self._cooldown_s:
            return "half_open"
        return "open"

    def retry_after(self) -> float:
        """Seconds until the breaker lets a trial call through (0 when it would now)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self._cooldown_s - self._clock())

    def allow(self) -> bool:
        """Whether a call may go out now; in half-open state only one trial at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "open" or self._trial_in_flight:
            return False
        self._trial_in_flight = True
        return True

    def succeeded(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_in_flight = False
        self._blamed.clear()

    def failed(self, *, by: str | None = None) -> None:
        """A failed call; `by`: the user whose request may itself have caused it (a timeout)."""
        if by is not None:
            if by in self._blamed:
                self.ended_without_verdict()
                return
            self._blamed.add(by)
        self._trial_in_flight = False
        self._failures += 1
        if self._opened_at is not None or self._failures >= self._threshold:
            self._opened_at = self._clock()

    def ended_without_verdict(self) -> None:
        """A call that says nothing about the provider's health (the request's own fault, or cancelled)."""
        self._trial_in_flight = False
