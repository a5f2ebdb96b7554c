"""Admin analytics: usage and cost (from the chat service's usage records) and credits granted
against spent (from the ledger's journal), over a period that defaults to the last 30 days.

The period is half-open, [since, until): one whose `since` is not before its `until` holds
nothing, and its report is empty (a rule between two parameters that no OpenAPI schema can
state is not made a 422). Instants are taken in UTC within 1970..9999, where every record lies,
so that no offset or far date overflows the services' date arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from common.contracts import (
    CreditsReport,
    GetCreditsReport,
    GetUsageReport,
    UsageFigures,
    UsageGrouping,
    UsageReport,
)
from gateway.auth.caller import AdminUser
from gateway.deps import Rpc, UserCaller
from gateway.http.params import IsoDateTime
from gateway.http.responses import ADMIN

router = APIRouter(tags=["admin"])

Since = Annotated[
    IsoDateTime | None,
    Query(
        description="Start (inclusive), ISO 8601; default 30 days before `until`. Not before `until`: an empty report."
    ),
]
Until = Annotated[IsoDateTime | None, Query(description="End (exclusive), ISO 8601; default now.")]


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
DEFAULT_SPAN = timedelta(days=30)


def _utc(moment: datetime) -> datetime:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        utc = aware.astimezone(UTC)
    except OverflowError:  # within a day of year 1 or 9999
        return EARLIEST if aware.year < 5000 else LATEST
    return min(max(utc, EARLIEST), LATEST)


def period(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime] | None:
    """The period asked for, in UTC, or None when it holds nothing."""
    end = _utc(until) if until else datetime.now(UTC)
    start = _utc(since) if since else max(end - DEFAULT_SPAN, EARLIEST)
    return (start, end) if start < end else None


NOTHING = UsageFigures(
    requests=0, cached=0, prompt_tokens=0, completion_tokens=0, cost_usd=0, credits=0, cache_hit_ratio=0
)


@router.get(
    "/v1/admin/analytics/usage",
    response_model=UsageReport,
    summary="Usage and cost by day, user, model or provider (admin)",
    responses=ADMIN,
)
async def usage(
    _: AdminUser,
    caller: UserCaller,
    rpc: Rpc,
    since: Since = None,
    until: Until = None,
    group_by: UsageGrouping = "day",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> UsageReport:
    asked = period(since, until)
    if asked is None:
        return UsageReport(group_by=group_by, rows=[], totals=NOTHING)
    query = GetUsageReport(since=asked[0], until=asked[1], group_by=group_by, limit=limit)
    return await rpc.call(caller.envelope(query), reply_model=UsageReport)


@router.get(
    "/v1/admin/analytics/credits",
    response_model=CreditsReport,
    summary="Credits granted vs spent (admin)",
    responses=ADMIN,
)
async def credits(
    _: AdminUser, caller: UserCaller, rpc: Rpc, since: Since = None, until: Until = None
) -> CreditsReport:
    asked = period(since, until)
    if asked is None:
        return CreditsReport(granted=0, granted_by_reason={}, spent=0, released=0)
    query = GetCreditsReport(since=asked[0], until=asked[1])
    return await rpc.call(caller.envelope(query), reply_model=CreditsReport)
