"""Reconciliation: recompute every balance from the journal (plus outbox entries not yet
copied into it) and report any account whose stored figures differ.

    make reconcile          (python -m credits.reconcile; exit status 1 on drift)

Accounts in use while it runs can look out of step for an instant, so an apparent drift is
checked again, account by account, before it is reported.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from common.contracts import Balance, Drift, ReconciliationReport
from common.mongo import database, mongo_client
from credits.ledger import Figures
from credits.repository import AccountRepository
from credits.settings import CreditsSettings

RECHECKS = 3


def figures_of(entries: Iterable[Mapping[str, Any]]) -> Figures:
    total = Figures()
    for e in entries:
        total = total + Figures(
            available=e["available"], reserved=e["reserved"], spent=e["spent"], granted=e["granted"]
        )
    return total


def stored_figures(account: Mapping[str, Any]) -> Figures:
    return Figures(
        available=account["credits"], reserved=account["reserved"], spent=account["spent"], granted=account["amount"]
    )


def _balance(user_id: str, f: Figures) -> Balance:
    # Balance forbids negatives; a broken account is shown clamped, its raw figures in the detail.
    return Balance(
        user_id=user_id,
        available=max(f.available, 0),
        reserved=max(f.reserved, 0),
        spent=max(f.spent, 0),
        granted=max(f.granted, 0),
    )


async def _journal_sums(repo: AccountRepository, user_id: str | None = None) -> dict[str, Figures]:
    pipeline: list[dict[str, Any]] = [{"$match": {"userId": user_id}}] if user_id else []
    pipeline.append(
        {"$group": {"_id": "$userId", **{k: {"$sum": f"${k}"} for k in ("available", "reserved", "spent", "granted")}}}
    )
    cursor = await repo.journal.aggregate(pipeline)
    return {
        row["_id"]: Figures(row["available"], row["reserved"], row["spent"], row["granted"]) async for row in cursor
    }


async def _computed(repo: AccountRepository, account: Mapping[str, Any], journal: Figures) -> Figures:
    pending = list(account["outbox"])
    if pending:
        flushed = {d["_id"] async for d in repo.journal.find({"_id": {"$in": [e["_id"] for e in pending]}}, {"_id": 1})}
        pending = [e for e in pending if e["_id"] not in flushed]
    return journal + figures_of(pending)


def _problem(account: Mapping[str, Any], computed: Figures) -> bool:
    stored = stored_figures(account)
    holds = sum(h["amount"] for h in account["holds"])
    return stored != computed or not stored.consistent or holds != stored.reserved


async def reconcile(repo: AccountRepository, *, limit: int) -> ReconciliationReport:
    sums = await _journal_sums(repo)
    suspects: list[str] = []
    count = 0
    async for account in repo.accounts.find({}).limit(limit):
        count += 1
        if _problem(account, await _computed(repo, account, sums.get(account["_id"], Figures()))):
            suspects.append(account["_id"])
    drift: list[Drift] = []
    for user_id in suspects:
        for attempt in range(RECHECKS):
            account = await repo.account(user_id)
            if account is None:
                break
            computed = await _computed(repo, account, (await _journal_sums(repo, user_id)).get(user_id, Figures()))
            if not _problem(account, computed):
                break
            if attempt == RECHECKS - 1:
                drift.append(
                    Drift(
                        user_id=user_id,
                        stored=_balance(user_id, stored_figures(account)),
                        computed=_balance(user_id, computed),
                    )
                )
            await asyncio.sleep(0.2)
    return ReconciliationReport(accounts=count, drift=drift)


async def _main() -> int:
    settings = CreditsSettings()
    client = mongo_client(settings)
    try:
        report = await reconcile(
            AccountRepository(database(client, settings), signup_credits=settings.signup_credits), limit=10_000_000
        )
    finally:
        await client.close()
    print(report.model_dump_json(indent=2))
    return 1 if report.drift else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_main()))
