"""Credits granted against credits spent over a period, from the immutable journal (an
aggregation on its `at` index)."""

from __future__ import annotations

from common.contracts.analytics import CreditsReport, GetCreditsReport
from credits.repository import AccountRepository


async def credits_report(repo: AccountRepository, query: GetCreditsReport) -> CreditsReport:
    pipeline = [
        {"$match": {"at": {"$gte": query.since, "$lt": query.until}}},
        {
            "$group": {
                "_id": {"kind": "$kind", "reason": "$reason"},
                "amount": {"$sum": "$amount"},
                "returned": {"$sum": "$available"},
            }
        },
    ]
    granted: dict[str, int] = {}
    spent = released = 0
    async for row in await repo.journal.aggregate(pipeline):
        kind, reason = row["_id"]["kind"], row["_id"].get("reason")
        if kind == "grant":
            granted[reason or "unknown"] = granted.get(reason or "unknown", 0) + int(row["amount"])
        elif kind == "commit":
            spent += int(row["amount"])
        elif kind in ("release", "expire"):
            released += int(row["returned"])
    return CreditsReport(granted=sum(granted.values()), granted_by_reason=granted, spent=spent, released=released)
