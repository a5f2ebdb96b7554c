"""Credits granted against credits spent over a period, from the journal (the log's pages of
that period, found by their `at` index)."""

from __future__ import annotations

from datetime import timedelta

from common.contracts.analytics import CreditsReport, GetCreditsReport
from credits.log import LedgerLog

# A page is stamped when its batch began; its entries are no older than that, and no later
# than its write. The margin catches an entry stamped just before its page's boundary.
MARGIN = timedelta(minutes=5)


async def credits_report(log: LedgerLog, query: GetCreditsReport) -> CreditsReport:
    granted: dict[str, int] = {}
    spent = released = 0
    pages = log.scan({"at": {"$gte": query.since - MARGIN, "$lt": query.until + MARGIN}})
    async for page in pages:
        for entry in page.entries:
            if not query.since <= entry.at < query.until:
                continue
            if entry.kind == "grant":
                reason = entry.reason or "unknown"
                granted[reason] = granted.get(reason, 0) + entry.amount
            elif entry.kind == "commit":
                spent += entry.amount
            elif entry.kind in ("release", "expire"):
                released += entry.delta.available
    return CreditsReport(granted=sum(granted.values()), granted_by_reason=granted, spent=spent, released=released)
