"""Admin analytics: usage and cost (from the chat service's usage records) and credits granted
against spent (from the ledger's journal), over a period that defaults to the last 30 days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from common.contracts import CreditsReport, GetCreditsReport, GetUsageReport, UsageGrouping, UsageReport
from common.errors import ValidationFailed
from gateway.auth import AdminUser
from gateway.deps import Rpc, UserCaller
from gateway.responses import ADMIN

router = APIRouter(tags=["admin"])

Since = Annotated[datetime | None, Query(description="Start (inclusive), ISO 8601; default 30 days before `until`.")]
Until = Annotated[datetime | None, Query(description="End (exclusive), ISO 8601; default now.")]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def period(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    end = _utc(until) if until else datetime.now(UTC)
    start = _utc(since) if since else end - timedelta(days=30)
    if start >= end:
        error = {"field": "query.since", "message": "not before until", "type": "value_error"}
        raise ValidationFailed("`since` must be before `until`", errors=[error])
    return start, end


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
    start, end = period(since, until)
    query = GetUsageReport(since=start, until=end, group_by=group_by, limit=limit)
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
    start, end = period(since, until)
    return await rpc.call(caller.envelope(GetCreditsReport(since=start, until=end)), reply_model=CreditsReport)
