"""Analytics queries (admin): usage and cost from the chat service's usage records, credits
granted against credits spent from the ledger's journal."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from common.contracts.envelope import Contract

UsageGrouping = Literal["day", "user", "model", "provider"]


class GetUsageReport(Contract):
    """Query: usage and estimated cost between two instants, grouped by one dimension."""

    since: AwareDatetime
    until: AwareDatetime
    group_by: UsageGrouping = Field("day", description="`user` sorted by credits gives the top users.")
    limit: int = Field(100, ge=1, le=1000)


class UsageFigures(Contract):
    requests: int = Field(ge=0)
    cached: int = Field(ge=0, description="Answers served from the prompt cache.")
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    cost_usd: float = Field(ge=0, description="Estimated provider cost.")
    credits: int = Field(ge=0, description="Credits charged.")
    cache_hit_ratio: float = Field(ge=0, le=1)


class UsageRow(Contract):
    key: str = Field(description="The day (YYYY-MM-DD), user id, model or provider.")
    figures: UsageFigures


class UsageReport(Contract):
    group_by: UsageGrouping
    rows: list[UsageRow] = Field(description="By day: oldest first; otherwise by credits, then requests, descending.")
    totals: UsageFigures


class GetCreditsReport(Contract):
    """Query: credits granted (by reason) and spent between two instants."""

    since: AwareDatetime
    until: AwareDatetime


class CreditsReport(Contract):
    granted: int = Field(ge=0)
    granted_by_reason: dict[str, int]
    spent: int = Field(ge=0, description="Credits committed by finished work.")
    released: int = Field(ge=0, description="Credits returned from released or expired reservations.")
