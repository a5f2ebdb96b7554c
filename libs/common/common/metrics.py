"""Prometheus metrics shared by every service, and the /metrics endpoint of the consuming
services (the gateway serves its own on its HTTP port).

Names follow Prometheus conventions: `aisaas_<what>_<unit>` with a `service` label, so one
dashboard covers every service and each scales on its own.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

HANDLER_SECONDS = Histogram(
    "aisaas_handler_seconds",
    "Time to handle one message, by service and message type.",
    ["service", "message"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
MESSAGES = Counter(
    "aisaas_messages_total",
    "Messages consumed, by outcome: ok, error (a typed error reply), retried, dead_lettered, expired, duplicate.",
    ["service", "message", "outcome"],
)
IN_FLIGHT = Gauge("aisaas_messages_in_flight", "Messages being handled now.", ["service"])


def serve_metrics(*, port: int, host: str = "127.0.0.1") -> None:
    """Expose /metrics on a side port (a daemon thread); port 0 disables it."""
    if port:
        start_http_server(port, addr=host)
