from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from common.contracts import Balance, JournalPage, ReconciliationReport
from gateway.auth.caller import AdminUser
from gateway.deps import Credits, UserCaller
from gateway.http.responses import ADMIN, CALLER

router = APIRouter(tags=["credits"])

# `<page>.<index>` of the last entry of the previous page (see credits/history.py): any such
# position is a place to continue from, so the pattern says exactly which cursors are accepted.
HISTORY_CURSOR = r"^[0-9]{1,15}\.[0-9]{1,15}$"


class CreditsView(BaseModel):
    available: int
    reserved: int
    spent: int
    granted: int


@router.get(
    "/v1/credits",
    response_model=CreditsView,
    summary="Your credits: available and held by work in progress",
    responses=CALLER,
)
async def credits(caller: UserCaller, ledger: Credits) -> Balance:
    return await ledger.balance(caller)


@router.get(
    "/v1/credits/history", response_model=JournalPage, summary="Your credit journal, newest first", responses=CALLER
)
async def history(
    caller: UserCaller,
    ledger: Credits,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(pattern=HISTORY_CURSOR, description="next_cursor of the previous page")] = None,
) -> JournalPage:
    return await ledger.journal(caller, limit=limit, before=cursor)


@router.post(
    "/v1/admin/reconcile",
    response_model=ReconciliationReport,
    summary="Recompute every balance from the journal (admin)",
    responses=ADMIN,
)
async def reconcile(_: AdminUser, caller: UserCaller, ledger: Credits) -> ReconciliationReport:
    return await ledger.reconcile(caller)
