"""An account's journal, newest first, read back through its chain of pages.

Each entry names the page of its account's previous entry (`prev`), and the account knows the
page of its newest one, so a page of history costs one read per log page it touches, however
long the account's or the ledger's history is. The cursor is `<page>.<index>` of the last
entry returned.
"""

from __future__ import annotations

from common.contracts import JournalEntry
from common.errors import ValidationFailed
from credits.log import LedgerLog

MAX_CURSOR = 40


def _parse(cursor: str) -> tuple[int, int]:
    seq, dot, index = cursor.partition(".")
    if len(cursor) > MAX_CURSOR or not dot or not seq.isdigit() or not index.isdigit():
        raise ValidationFailed(
            "invalid history cursor",
            errors=[{"field": "query.cursor", "message": "not a cursor this API returned", "type": "value_error"}],
        )
    return int(seq), int(index)


async def history(
    log: LedgerLog, *, partition: int, user_id: str, head: int | None, limit: int, before: str | None
) -> tuple[list[JournalEntry], str | None]:
    seq: int | None
    below: int | None
    seq, below = _parse(before) if before is not None else (head, None)
    found: list[tuple[int, int, JournalEntry]] = []
    while seq is not None and len(found) <= limit:
        page = await log.read(partition, seq)
        if page is None:
            break
        mine = [(i, e) for i, e in enumerate(page.entries) if e.user_id == user_id]
        if not mine:
            break  # a cursor that points at nobody's page of this account: nothing before it
        found += [(seq, i, e.journal_entry()) for i, e in reversed(mine) if below is None or i < below]
        seq, below = mine[0][1].prev, None
    cursor = f"{found[limit - 1][0]}.{found[limit - 1][1]}" if len(found) > limit else None
    return [entry for _, _, entry in found[:limit]], cursor
