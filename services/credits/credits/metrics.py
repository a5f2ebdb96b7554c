"""The ledger's business metrics: how many operations and how many credits moved."""

from __future__ import annotations

from prometheus_client import Counter

OPERATIONS = Counter(
    "aisaas_credits_operations_total",
    "Ledger operations by kind (reserve, commit, release, expire, grant) and outcome (applied, replayed, refused).",
    ["operation", "outcome"],
)
CREDITS = Counter(
    "aisaas_credits_moved_total",
    "Credits moved by applied operations: reserved, committed (charged), released, expired (returned), granted.",
    ["operation"],
)
INSUFFICIENT = Counter("aisaas_credits_insufficient_total", "Reservations refused for lack of credits.")


def applied(operation: str, amount: int) -> None:
    OPERATIONS.labels(operation, "applied").inc()
    CREDITS.labels(operation).inc(amount)
