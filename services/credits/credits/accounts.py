"""Checkpoints: the accounts as of a page of the log, in the seed's `credits` collection, the
reservations settled since the previous checkpoint (a digest, `credits.settlements`), and one
marker per partition (`credit_partitions`) saying up to which page they are complete and
naming the newest digest.

An account document keeps the seed's fields (`userEmail`, `credits` = available, `amount` =
granted) plus reserved, spent, open holds, the grant keys it has had, where its history
starts (`lastSeq`) and the page it was written at (`seq`). A checkpoint writes the accounts
that changed since the last one, then the digest, then moves the marker. A document is
replaced only if it is still the one this replica read or wrote last, so a replica that lost
its partition cannot overwrite what the new owner wrote (nor write a digest); and the marker
moves only when every document was written. Whatever changed after the marker (or after an
account's own `seq`) is still in the log and is replayed on load.
"""

# No `from __future__ import annotations`: TypedDict reads NotRequired from evaluated annotations.
import contextlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, NotRequired, TypedDict, cast

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from common.pages import partition_key
from credits.book import AccountState, Hold, Settled
from credits.ledger import Figures
from credits.settlements import Settlements

Doc = dict[str, Any]
DUPLICATE_KEY = 11000
LEDGER_ID = "ledger"


class HoldDoc(TypedDict):
    id: str
    amount: int
    expiresAt: datetime
    purpose: NotRequired[str]
    createdAt: NotRequired[datetime]


class AccountDoc(TypedDict):
    """An account as stored. A checkpoint writes every field but `seen`; the fields NotRequired
    may be absent from a document the earlier ledger wrote (it kept `seen`, not `grants`)."""

    _id: str
    credits: int
    reserved: int
    spent: int
    amount: int
    createdAt: datetime
    userId: NotRequired[str]
    userEmail: NotRequired[str]
    holds: NotRequired[list[HoldDoc]]
    grants: NotRequired[list[str]]
    seen: NotRequired[list[str]]
    lastSeq: NotRequired[int | None]
    version: NotRequired[int]
    partition: NotRequired[int]
    seq: NotRequired[int]
    updatedAt: NotRequired[datetime]


class MarkerDoc(TypedDict):
    """A partition's marker (`_id` p000...), or the ledger's own record (`_id` ledger)."""

    _id: str
    partition: NotRequired[int]
    checkpoint: NotRequired[int]
    announced: NotRequired[int]
    holders: NotRequired[list[str]]
    digest: NotRequired[str | None]  # the newest settlement digest (absent: written before digests)
    updatedAt: NotRequired[datetime]
    partitions: NotRequired[int]  # the ledger's record only


@dataclass(frozen=True, slots=True)
class Marker:
    checkpoint: int = 0  # every account reflects every page up to here
    announced: int = 0  # every page up to here was announced as CreditsChanged
    holders: list[str] = field(default_factory=list)  # accounts with open holds at the checkpoint
    digest: str | None = None  # the newest settlement digest: the settlements up to the checkpoint


def account_document(account: AccountState, *, partition: int, seq: int) -> AccountDoc:
    f = account.figures
    return {
        "_id": account.user_id,
        "userId": account.user_id,
        "userEmail": account.email,
        "credits": f.available,
        "reserved": f.reserved,
        "spent": f.spent,
        "amount": f.granted,
        "holds": [
            {"id": h.id, "amount": h.amount, "expiresAt": h.expires_at, "purpose": h.purpose, "createdAt": h.created_at}
            for h in account.holds.values()
        ],
        "grants": sorted(account.grants),
        "lastSeq": account.last_seq,
        "version": account.version,
        "partition": partition,
        "seq": seq,
        "createdAt": account.created_at,
        "updatedAt": account.updated_at,
    }


def _grants(doc: AccountDoc) -> set[str]:
    if "seq" in doc:
        return set(doc.get("grants", []))
    # An account the earlier ledger wrote: its signup grant was made on creation, and its recent
    # grant keys are among the operation ids it remembered.
    seen = {k.removeprefix("grant:") for k in doc.get("seen", []) if k.startswith("grant:")}
    return seen | {f"signup:{doc['_id']}"}


def account_state(doc: AccountDoc) -> AccountState:
    return AccountState(
        user_id=doc["_id"],
        email=doc.get("userEmail", ""),
        created_at=doc["createdAt"],
        updated_at=doc.get("updatedAt", doc["createdAt"]),
        figures=Figures(doc["credits"], doc["reserved"], doc["spent"], doc["amount"]),
        holds={
            h["id"]: Hold(
                h["id"], h["amount"], h["expiresAt"], h.get("purpose", ""), h.get("createdAt", doc["createdAt"])
            )
            for h in doc.get("holds", [])
        },
        grants=_grants(doc),
        last_seq=doc.get("lastSeq"),
        version=doc.get("version", 0),
        seq=doc.get("seq", 0),
        stored=True,
    )


def _without_id(doc: AccountDoc) -> dict[str, Any]:
    """The fields a `$set` may name: all but the immutable `_id`."""
    return {k: v for k, v in doc.items() if k != "_id"}


class AccountStore:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        # The ledger is the only writer of both collections: their documents are these types.
        self.accounts = cast("AsyncCollection[AccountDoc]", db["credits"])
        self.markers = cast("AsyncCollection[MarkerDoc]", db["credit_partitions"])
        self.settlements = Settlements(db)

    async def create_indexes(self) -> None:
        await self.settlements.create_indexes()

    async def load(self, user_id: str) -> AccountState | None:
        doc = await self.accounts.find_one({"_id": user_id})
        return account_state(doc) if doc is not None else None

    async def marker(self, partition: int) -> Marker:
        doc = await self.markers.find_one({"_id": partition_key(partition)})
        if doc is None:
            return Marker()
        return Marker(doc["checkpoint"], doc.get("announced", 0), list(doc.get("holders", [])), doc.get("digest"))

    async def checkpoint(
        self,
        *,
        partition: int,
        seq: int,
        accounts: list[AccountState],
        settled: list[tuple[str, Settled]],
        since: int,
        marker: Marker,
        now: datetime,
    ) -> Marker | None:
        """Write `accounts` as of page `seq`, then what was `settled` in the pages (`since`, `seq`]
        as a digest after `marker.digest`, then the partition's marker: the marker written. None
        (and no digest, no marker) when an account's document is not the one this replica last
        read or wrote: another replica has written the partition since, and this one's book is
        stale."""
        # Only ever by `_id` and an equality on a number: an upsert, or a filter that compares a
        # field otherwise, costs mongoeco a pass over the whole collection. A new account is
        # inserted; a stored one is replaced only if its document is still at the page it was
        # read or last written at (a legacy document has no `seq`: null matches it).
        fresh = [account_document(a, partition=partition, seq=seq) for a in accounts if not a.stored]
        updates = [
            UpdateOne(
                {"_id": a.user_id, "seq": a.seq or None},
                {"$set": _without_id(account_document(a, partition=partition, seq=seq))},
            )
            for a in accounts
            if a.stored
        ]
        complete = True
        if fresh:
            try:
                await self.accounts.insert_many(fresh, ordered=False)
            except BulkWriteError as exc:
                if any(e["code"] != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                    raise
                complete = False
        if updates:
            result = await self.accounts.bulk_write(updates, ordered=False)
            complete = complete and result.matched_count == len(updates)
        if not complete:
            return None
        digest = await self.settlements.write(
            partition=partition, since=since, through=seq, after=marker.digest, settled=settled, at=now
        )
        marker = replace(marker, digest=digest)
        fields = {
            "checkpoint": marker.checkpoint,
            "announced": marker.announced,
            "holders": marker.holders,
            "digest": marker.digest,
            "updatedAt": now,
        }
        with contextlib.suppress(DuplicateKeyError):  # a later checkpoint is already recorded
            await self.markers.update_one(
                {"_id": partition_key(partition), "checkpoint": {"$lte": marker.checkpoint}},
                {"$set": {"partition": partition, **fields}},
                upsert=True,
            )
        return marker

    async def partitions(self) -> int | None:
        """How many partitions the stored ledger was written with (None: a new store)."""
        doc = await self.markers.find_one({"_id": LEDGER_ID})
        return int(doc["partitions"]) if doc is not None else None

    async def set_partitions(self, partitions: int) -> None:
        await self.markers.update_one({"_id": LEDGER_ID}, {"$set": {"partitions": partitions}}, upsert=True)
