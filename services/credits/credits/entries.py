"""Journal entries: one immutable change to one account, as the ledger's log stores them.

A page of the log (credits.log) keeps its entries as one compact JSON text: the log is the
ledger's own write-ahead record, read back only by the credits service, and one value per
page keeps a page's cost on the store nearly flat in the number of entries it holds.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from common.contracts import EntryKind, JournalEntry
from credits.ledger import Figures

FORMAT = 1


def entry_id(kind: EntryKind, key: str) -> str:
    return f"{kind}:{key}"


def millis(at: datetime) -> int:
    return round(at.timestamp() * 1000)


def from_millis(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True, slots=True)
class Entry:
    """`prev` is the page of this account's previous entry (None for its first): the chain the
    account's history is read back by, newest first."""

    id: str
    user_id: str
    kind: EntryKind
    amount: int
    delta: Figures
    at: datetime
    reservation_id: str | None = None
    reason: str | None = None
    expires_at: datetime | None = None
    purpose: str | None = None
    email: str | None = None
    prev: int | None = None

    @property
    def key(self) -> str:
        """The operation's own key: the reservation id, or a grant's idempotency key."""
        return self.id.partition(":")[2]

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": self.id,
            "user": self.user_id,
            "kind": self.kind,
            "amount": self.amount,
            "delta": list(self.delta.astuple()),
            "at": millis(self.at),
        }
        for name, value in (
            ("rid", self.reservation_id),
            ("reason", self.reason),
            ("expires", millis(self.expires_at) if self.expires_at else None),
            ("purpose", self.purpose),
            ("email", self.email),
            ("prev", self.prev),
        ):
            if value is not None:
                row[name] = value
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Entry:
        return cls(
            id=row["id"],
            user_id=row["user"],
            kind=row["kind"],
            amount=row["amount"],
            delta=Figures(*row["delta"]),
            at=from_millis(row["at"]),
            reservation_id=row.get("rid"),
            reason=row.get("reason"),
            expires_at=from_millis(row["expires"]) if "expires" in row else None,
            purpose=row.get("purpose"),
            email=row.get("email"),
            prev=row.get("prev"),
        )

    def journal_entry(self) -> JournalEntry:
        return JournalEntry(
            id=self.id,
            user_id=self.user_id,
            kind=self.kind,
            amount=self.amount,
            reservation_id=uuid.UUID(self.reservation_id) if self.reservation_id else None,
            reason=self.reason,
            available=self.delta.available,
            reserved=self.delta.reserved,
            spent=self.delta.spent,
            granted=self.delta.granted,
            at=self.at,
        )


def encode(entries: list[Entry]) -> str:
    return json.dumps([e.to_row() for e in entries], separators=(",", ":"))


def decode(text: str) -> list[Entry]:
    return [Entry.from_row(row) for row in json.loads(text)]
