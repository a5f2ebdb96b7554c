"""Usage analytics over the `usage` collection: MongoDB aggregations that pick the pages of the
period by their `at` index, unwind their records, count each usage id once (a request that
was redelivered may have been recorded twice) and group them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection

from common.contracts import Envelope, GetUsageReport, UsageFigures, UsageGrouping, UsageReport, UsageRow
from common.errors import Forbidden

# A page is stamped with its oldest record; its newest is at most a writer's batch later.
PAGE_SPAN = timedelta(minutes=5)

KEYS: dict[UsageGrouping, Any] = {
    "day": {"$dateToString": {"format": "%Y-%m-%d", "date": "$at"}},
    "user": "$user_id",
    "model": "$model",
    "provider": "$provider",
}
SUMS = {
    "requests": {"$sum": 1},
    "cached": {"$sum": {"$cond": ["$cached", 1, 0]}},
    "prompt_tokens": {"$sum": "$prompt_tokens"},
    "completion_tokens": {"$sum": "$completion_tokens"},
    "cost_usd": {"$sum": "$cost_usd"},
    "credits": {"$sum": "$credits"},
}


def figures(row: dict[str, Any]) -> UsageFigures:
    requests = int(row["requests"])
    return UsageFigures(
        requests=requests,
        cached=int(row["cached"]),
        prompt_tokens=int(row["prompt_tokens"]),
        completion_tokens=int(row["completion_tokens"]),
        cost_usd=round(float(row["cost_usd"]), 6),
        credits=int(row["credits"]),
        cache_hit_ratio=round(row["cached"] / requests, 6) if requests else 0.0,
    )


class UsageAnalytics:
    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self._collection = collection
        self._indexed = False

    async def handle(self, envelope: Envelope[GetUsageReport]) -> UsageReport:
        if envelope.actor is not None and envelope.actor.role != "admin":
            raise Forbidden("admins only")
        return await self.report(envelope.payload)

    async def report(self, query: GetUsageReport) -> UsageReport:
        if not self._indexed:  # lazily: the chat service starts, and answers, while MongoDB is away
            await self._collection.create_index([("at", ASCENDING)])
            self._indexed = True
        records: list[dict[str, Any]] = [
            {"$match": {"at": {"$gte": query.since - PAGE_SPAN, "$lt": query.until}}},
            {"$unwind": "$records"},
            {"$group": {"_id": "$records._id", "record": {"$first": "$records"}}},
            {"$replaceRoot": {"newRoot": "$record"}},
            {"$match": {"at": {"$gte": query.since, "$lt": query.until}}},
        ]
        order = {"_id": 1} if query.group_by == "day" else {"credits": -1, "requests": -1, "_id": 1}
        grouped = [
            *records,
            {"$group": {"_id": KEYS[query.group_by], **SUMS}},
            {"$sort": order},
            {"$limit": query.limit},
        ]
        rows = [
            UsageRow(key=str(r["_id"]), figures=figures(r)) async for r in await self._collection.aggregate(grouped)
        ]
        totals = [r async for r in await self._collection.aggregate([*records, {"$group": {"_id": None, **SUMS}}])]
        empty = dict.fromkeys(SUMS, 0)
        return UsageReport(group_by=query.group_by, rows=rows, totals=figures(totals[0] if totals else empty))
