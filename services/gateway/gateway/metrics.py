"""The gateway's own Prometheus metrics (served with the shared ones on its METRICS_PORT)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_SECONDS = Histogram(
    "aisaas_http_request_seconds",
    "Gateway HTTP requests by method, route template and status.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
HTTP_IN_FLIGHT = Gauge("aisaas_http_requests_in_flight", "Gateway HTTP requests being served now.")
RATE_LIMITED = Counter(
    "aisaas_rate_limited_total", "Requests refused with 429, by budget (ip, chat, images).", ["budget"]
)
