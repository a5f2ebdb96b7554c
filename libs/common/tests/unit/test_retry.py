import pymongo.errors
import pytest
import redis.exceptions

from common.bus.retry import backoff, delivery_count, is_transient
from common.errors import Conflict, InternalError, ServiceUnavailable

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "exc",
    [
        ServiceUnavailable("the ledger is unavailable; retry"),
        pymongo.errors.ServerSelectionTimeoutError("no server"),
        pymongo.errors.AutoReconnect("connection reset"),
        redis.exceptions.ConnectionError("Error 111 connecting"),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
    ],
)
def test_a_dependency_down_is_transient(exc: Exception) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        Conflict("no such reservation"),
        InternalError(),
        pymongo.errors.DuplicateKeyError("E11000"),
        redis.exceptions.ResponseError("NOSCRIPT"),
        RuntimeError("bug"),
        ValueError("bad"),
    ],
)
def test_an_answer_or_a_bug_is_not_transient(exc: Exception) -> None:
    assert not is_transient(exc)


def test_delivery_count_reads_the_quorum_queue_header() -> None:
    assert delivery_count(None) == 0
    assert delivery_count({}) == 0
    assert delivery_count({"x-delivery-count": 3}) == 3
    assert delivery_count({"x-delivery-count": "junk"}) == 0
    assert delivery_count({"x-delivery-count": -2}) == 0


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff(n, first_s=0.5, max_s=8.0) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert backoff(10_000, first_s=0.5, max_s=8.0) == 8.0
