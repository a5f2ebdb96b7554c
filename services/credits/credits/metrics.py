"""The ledger's business metrics: how many operations and how many credits moved."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
BATCH_OPERATIONS = Histogram(
    "aisaas_credits_batch_operations",
    "Operations committed together in one batch (group commit).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
PAGE_ENTRIES = Histogram(
    "aisaas_credits_page_entries",
    "Journal entries per page of the log.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
BATCH_SECONDS = Histogram(
    "aisaas_credits_batch_seconds",
    "Time from a batch's start to its page being durable.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
CHECKPOINT_ACCOUNTS = Histogram(
    "aisaas_credits_checkpoint_accounts",
    "Accounts written per checkpoint.",
    buckets=(0, 1, 10, 100, 1000, 10000),
)
FENCED = Counter(
    "aisaas_credits_fenced_total", "Pages refused because another replica wrote the partition first (then reloaded)."
)


def applied(operation: str, amount: int) -> None:
    OPERATIONS.labels(operation, "applied").inc()
    CREDITS.labels(operation).inc(amount)
