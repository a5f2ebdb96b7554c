"""Prometheus metrics shared by the consuming services, and the /metrics side port each service
(the gateway included) serves on METRICS_PORT.

Names follow Prometheus conventions: `aisaas_<what>_<unit>` with a `service` label, so one
dashboard covers every service and each scales on its own.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

HANDLER_SECONDS = Histogram(
    "aisaas_handler_seconds",
    "Time to handle one message, by service and message type.",
    ["service", "message"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
MESSAGES = Counter(
    "aisaas_messages_total",
    "Messages consumed, by outcome: ok, error (a typed error reply), failed (an unexpected error: answered 500 "
    "and dead-lettered), retried (a dependency down, nobody waiting: handed back to the queue after a backoff), "
    "dead_lettered (unparseable, or retried on every attempt), refused (publisher not allowed), expired, duplicate.",
    ["service", "message", "outcome"],
)
IN_FLIGHT = Gauge("aisaas_messages_in_flight", "Messages being handled now.", ["service"])


QUEUE_DEPTH = Gauge("aisaas_queue_depth", "Messages ready in a service's queue, sampled by the service.", ["queue"])
QUEUE_CONSUMERS = Gauge(
    "aisaas_queue_consumers", "Consumers attached to a service's queue, sampled by the service.", ["queue"]
)


def serve_metrics(*, port: int, host: str = "127.0.0.1") -> None:
    """Expose /metrics on a side port (a daemon thread), away from the public API; port 0
    disables it. A busy port is logged, not fatal: metrics never take a service down."""
    if not port:
        return
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        log.error("metrics endpoint not started", extra={"port": port, "error": str(exc)})
