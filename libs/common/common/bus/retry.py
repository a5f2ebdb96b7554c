"""Which failures are worth another try later, and how much later.

A command nobody waits for (published without `reply_to`: a settlement sent with `wait=False`,
an image job) that meets a dependency down -- the ledger's store restarting, Redis cut off, the
broker refusing a publish -- must not be acked away as if it had been answered: nobody would
ever learn it was lost. Its consumer holds it for a backoff and hands it back to the queue
with `basic.reject(requeue=true)`; the quorum queue counts that delivery, and after
BUS_MAX_ATTEMPTS of them (its `x-delivery-limit`) dead-letters it (reason `delivery_limit`),
where it is kept and counted.

Why reject-and-requeue rather than a retry queue whose message TTL dead-letters back:
- a copy republished by the consumer would lose the publisher's broker-verified AMQP `user_id`
  (the broker refuses a `user_id` other than the connection's login), which bus trust rests on
  (`common.bus.trust`); a message handed back keeps every property, routing key and partition;
- a queue has one dead-letter exchange, already spent on the dead-letter queue;
- no new queue or exchange: nothing changes for existing namespaces or broker permissions.
`basic.reject` (not `basic.nack`) because RabbitMQ 4.3 counts a requeue towards the delivery
limit only for `reject` (rabbitmq-server#15387); before 4.3 every return counted.

The backoff doubles with the message's `x-delivery-count` (the returns the queue has counted),
from BUS_RETRY_BACKOFF_S up to BUS_RETRY_BACKOFF_MAX_S. A requester that waits (`reply_to`) is
answered 503 at once instead: it may retry itself, and its deadline is short.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pymongo.errors
import redis.exceptions

from common.errors import ServiceUnavailable

DELIVERY_COUNT = "x-delivery-count"  # set by quorum queues on a message handed back before

# A dependency that is down or unreachable, as opposed to a request it refused.
TRANSIENT: tuple[type[BaseException], ...] = (
    ServiceUnavailable,
    pymongo.errors.ConnectionFailure,  # server selection timed out, connection lost, not primary
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
)


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` says a dependency is down for now (worth a later try), not that the work is wrong."""
    return isinstance(exc, TRANSIENT)


def delivery_count(headers: Mapping[str, Any] | None) -> int:
    """How many deliveries of this message the queue has counted as failed before this one."""
    value = (headers or {}).get(DELIVERY_COUNT, 0)
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def backoff(attempt: int, *, first_s: float, max_s: float) -> float:
    """Seconds to hold a message before handing it back, after its `attempt`-th (0-based) failure."""
    return min(max_s, first_s * 2.0 ** min(attempt, 32))
