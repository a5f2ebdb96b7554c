"""Reconciliation: recompute every balance from the journal and report any account whose
stored figures differ.

    make reconcile          (python -m credits.reconcile; exit status 1 on drift)

An account document is a checkpoint: it holds the effect of every entry of its partition up
to its page `seq`, so it is compared with exactly those entries (no race with the live
ledger). Every account's whole journal must also add up to figures that never go negative.
"""

from __future__ import annotations

import asyncio
import sys
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from common.contracts import Balance, Drift, ReconciliationReport
from common.mongo import database, mongo_client
from credits.accounts import AccountStore
from credits.ledger import Figures
from credits.log import LedgerLog
from credits.settings import CreditsSettings


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


async def reconcile(store: AccountStore, log: LedgerLog, *, limit: int) -> ReconciliationReport:
    accounts = {doc["_id"]: doc async for doc in store.accounts.find({}).limit(limit)}
    checkpointed: dict[str, Figures] = defaultdict(Figures)
    journal: dict[str, Figures] = defaultdict(Figures)
    async for page in log.scan():
        for entry in page.entries:
            journal[entry.user_id] += entry.delta
            doc = accounts.get(entry.user_id)
            if doc is not None and doc.get("partition") == page.partition and page.seq <= doc.get("seq", 0):
                checkpointed[entry.user_id] += entry.delta
    drift: list[Drift] = []
    for user_id, doc in accounts.items():
        stored, computed = stored_figures(doc), checkpointed[user_id]
        holds = sum(h["amount"] for h in doc.get("holds", []))
        if stored != computed or not stored.consistent or holds != stored.reserved:
            drift.append(Drift(user_id=user_id, stored=_balance(user_id, stored), computed=_balance(user_id, computed)))
    for user_id, figures in journal.items():
        if not figures.consistent and user_id not in {d.user_id for d in drift}:
            drift.append(Drift(user_id=user_id, stored=_balance(user_id, figures), computed=_balance(user_id, figures)))
    return ReconciliationReport(accounts=len(set(accounts) | set(journal)), drift=drift)


async def _main() -> int:
    settings = CreditsSettings()
    client = mongo_client(settings)
    try:
        db = database(client, settings)
        report = await reconcile(AccountStore(db), LedgerLog(db), limit=10_000_000)
    finally:
        await client.close()
    print(report.model_dump_json(indent=2))
    return 1 if report.drift else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_main()))
