from __future__ import annotations

import pytest

from chat.breaker import CircuitBreaker

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, failures: int = 3) -> CircuitBreaker:
    return CircuitBreaker(failures=failures, cooldown_s=10, clock=clock)


def test_opens_after_consecutive_failures_only() -> None:
    clock = Clock()
    b = breaker(clock)
    b.failed()
    b.failed()
    b.succeeded()  # a success in between resets the count
    b.failed()
    b.failed()
    assert b.state == "closed" and b.allow()
    b.failed()
    assert b.state == "open" and not b.allow()
    assert b.retry_after() == 10


def test_after_the_cooldown_one_trial_goes_through_and_its_success_closes() -> None:
    clock = Clock()
    b = breaker(clock, failures=1)
    b.failed()
    clock.now += 9.9
    assert not b.allow()
    clock.now += 0.1
    assert b.state == "half_open"
    assert b.allow() and not b.allow()  # only one trial at a time
    b.succeeded()
    assert b.state == "closed" and b.allow() and b.allow()


def test_a_failed_trial_opens_it_for_another_cooldown() -> None:
    clock = Clock()
    b = breaker(clock, failures=2)
    b.failed()
    b.failed()
    clock.now += 10
    assert b.allow()
    b.failed()
    assert b.state == "open" and b.retry_after() == 10


def test_a_trial_without_verdict_lets_the_next_one_through() -> None:
    clock = Clock()
    b = breaker(clock, failures=1)
    b.failed()
    clock.now += 10
    assert b.allow() and not b.allow()
    b.ended_without_verdict()
    assert b.allow()


def test_timeouts_count_once_per_user_so_one_user_cannot_open_it() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(10):
        b.failed(by="mallory")  # her own huge requests time out, again and again
    assert b.state == "closed" and b.allow()
    b.failed(by="alice")
    b.failed(by="bob")  # three users' timeouts in a row: the provider is slow for everyone
    assert b.state == "open"


def test_a_user_already_counted_cannot_reopen_it_with_a_trial() -> None:
    clock = Clock()
    b = breaker(clock, failures=2)
    b.failed(by="mallory")
    b.failed()  # a provider-side failure counts as ever
    assert b.state == "open"
    clock.now += 10
    assert b.allow()
    b.failed(by="mallory")  # no verdict: the breaker stays half-open, the next trial may go
    assert b.state == "half_open" and b.allow()
    b.failed(by="alice")
    assert b.state == "open"


def test_a_success_starts_a_new_run_of_users() -> None:
    clock = Clock()
    b = breaker(clock, failures=2)
    b.failed(by="mallory")
    b.succeeded()
    b.failed(by="mallory")
    assert b.state == "closed"
    b.failed(by="alice")
    assert b.state == "open"
