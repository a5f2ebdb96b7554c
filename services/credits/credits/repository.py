"""The ledger in MongoDB. Each operation is ONE conditional `find_one_and_update` on the
user's account document (collection `credits`, the seed's fields `userEmail`, `credits`,
`amount`, extended), which also appends the operation's journal entry to the document's
outbox. The outbox is later copied to the immutable `credit_journal` collection by
`JournalFlusher`, so an account and its journal can never disagree, even across crashes.

Idempotency: an operation's id is remembered in the account's `seen` list (the last
SEEN_WINDOW ids), its entry in the outbox and then in the journal; grants and reserves look
in the journal first and match on the outbox too, so a repeat returns the first result even
after SEEN_WINDOW newer operations.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from common.contracts import Balance, EntryKind, JournalEntry
from common.errors import Conflict, InsufficientCredits, NotFound, ValidationFailed
from credits.ledger import (
    TERMINAL,
    Figures,
    check_resolution,
    entry_id,
    grant_delta,
    replay_or_refuse,
    reserve_delta,
    resolve_delta,
)

SEEN_WINDOW = 1000
Doc = dict[str, Any]
# What an applied operation sends back: the figures and version, not the holds, outbox and
# seen ids, which only the slow paths read (with a full `account()` read).
FIGURES = {"credits": 1, "reserved": 1, "spent": 1, "amount": 1, "version": 1}


@dataclass(frozen=True, slots=True)
class Held:
    """A reservation's hold: made by this call (`applied`) or, for a repeat, the first one."""

    account: Doc
    hold: Doc
    applied: bool


@dataclass(frozen=True, slots=True)
class Resolution:
    """How a reservation ended: by this call (`applied`) or, for a replay, by the first one."""

    account: Doc
    kind: EntryKind
    used: int
    applied: bool


def balance_of(doc: Mapping[str, Any]) -> Balance:
    return Balance(
        user_id=doc["_id"],
        available=doc["credits"],
        reserved=doc["reserved"],
        spent=doc["spent"],
        granted=doc["amount"],
    )


def _entry(
    *,
    user_id: str,
    kind: EntryKind,
    key: str,
    amount: int,
    delta: Figures,
    now: datetime,
    reservation_id: str | None = None,
    reason: str | None = None,
) -> Doc:
    return {
        "_id": entry_id(kind, key),
        "userId": user_id,
        "kind": kind,
        "amount": amount,
        "reservationId": reservation_id,
        "reason": reason,
        "available": delta.available,
        "reserved": delta.reserved,
        "spent": delta.spent,
        "granted": delta.granted,
        "at": now,
    }


def journal_entry(doc: Mapping[str, Any]) -> JournalEntry:
    return JournalEntry(
        id=doc["_id"],
        user_id=doc["userId"],
        kind=doc["kind"],
        amount=doc["amount"],
        reservation_id=doc.get("reservationId"),
        reason=doc.get("reason"),
        available=doc["available"],
        reserved=doc["reserved"],
        spent=doc["spent"],
        granted=doc["granted"],
        at=doc["at"],
    )


class AccountRepository:
    def __init__(self, db: AsyncDatabase[Doc], *, signup_credits: int) -> None:
        self.accounts = db["credits"]
        self.journal = db["credit_journal"]
        self.users = db["users"]
        self.signup_credits = signup_credits

    async def create_indexes(self) -> None:
        await self.accounts.create_index([("userEmail", ASCENDING)])
        await self.accounts.create_index([("holds.expiresAt", ASCENDING)])
        await self.accounts.create_index([("outbox.at", ASCENDING)])
        await self.journal.create_index([("userId", ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)])
        await self.journal.create_index([("reservationId", ASCENDING)])
        await self.journal.create_index([("at", ASCENDING)])
        await self.users.create_index([("userEmail", ASCENDING)])

    # -- accounts -------------------------------------------------------------------------

    async def ensure_account(self, *, user_id: str, email: str, now: datetime) -> None:
        """Create the account with its signup grant, exactly once however often it is called."""
        signup = self.signup_credits
        outbox = (
            [
                _entry(
                    user_id=user_id,
                    kind="grant",
                    key=f"signup:{user_id}",
                    amount=signup,
                    delta=grant_delta(signup),
                    now=now,
                    reason="signup",
                )
            ]
            if signup
            else []
        )
        fields = {
            "userId": user_id,
            "userEmail": email,
            "credits": signup,
            "reserved": 0,
            "spent": 0,
            "amount": signup,
            "version": 1,
            "holds": [],
            "outbox": outbox,
            "seen": [f"grant:signup:{user_id}"],
            "createdAt": now,
            "updatedAt": now,
        }
        try:
            await self.accounts.update_one({"_id": user_id}, {"$setOnInsert": fields}, upsert=True)
            await self.users.update_one(
                {"_id": user_id},
                {
                    "$setOnInsert": {
                        "clerkUserId": user_id,
                        "userEmail": email,
                        "role": "user",
                        "metadata": {},
                        "createdAt": now,
                        "updatedAt": now,
                    }
                },
                upsert=True,
            )
        except DuplicateKeyError:
            pass  # a concurrent first sight created it

    async def account(self, user_id: str) -> Doc | None:
        return await self.accounts.find_one({"_id": user_id})

    async def balance(self, *, user_id: str, email: str, now: datetime) -> tuple[Balance, int]:
        doc = await self.account(user_id)
        if doc is None:
            await self.ensure_account(user_id=user_id, email=email, now=now)
            doc = await self.account(user_id)
            assert doc is not None
        return balance_of(doc), doc["version"]

    async def _apply(
        self,
        condition: Doc,
        *,
        user_id: str,
        delta: Figures,
        entry: Doc,
        now: datetime,
        push: Doc | None = None,
        pull: Doc | None = None,
        remember: bool = False,
    ) -> Doc | None:
        """Apply `entry` if `condition` holds. `remember`: only if the entry's id is neither in the
        `seen` window nor still in the outbox, and add it to `seen`."""
        update: Doc = {
            "$inc": {**delta.as_inc(), "version": 1},
            "$push": {"outbox": entry, **(push or {})},
            "$set": {"updatedAt": now},
        }
        if remember:
            condition = {**condition, "seen": {"$ne": entry["_id"]}, "outbox._id": {"$ne": entry["_id"]}}
            update["$push"]["seen"] = {"$each": [entry["_id"]], "$slice": -SEEN_WINDOW}
        if pull is not None:
            update["$pull"] = pull
        return await self.accounts.find_one_and_update(
            {"_id": user_id, **condition}, update, projection=FIGURES, return_document=ReturnDocument.AFTER
        )

    # -- operations ------------------------------------------------------------------------

    async def grant(self, *, user_id: str, email: str, key: str, amount: int, reason: str, now: datetime) -> Doc:
        seen = entry_id("grant", key)
        if not await self._journaled(seen):
            entry = _entry(
                user_id=user_id, kind="grant", key=key, amount=amount, delta=grant_delta(amount), now=now, reason=reason
            )
            for _ in range(2):
                doc = await self._apply(
                    {}, user_id=user_id, delta=grant_delta(amount), entry=entry, now=now, remember=True
                )
                if doc is not None:
                    return doc
                if await self.account(user_id) is not None:
                    break
                await self.ensure_account(user_id=user_id, email=email, now=now)
        doc = await self.account(user_id)
        if doc is None:
            raise NotFound("no such account")
        return doc  # a replay: the grant was applied before

    async def reserve(
        self, *, user_id: str, email: str, reservation_id: str, amount: int, purpose: str, ttl: timedelta, now: datetime
    ) -> Held:
        """Hold `amount`. A repeat returns the first hold, with its status now."""
        seen = entry_id("reserve", reservation_id)
        hold = {"id": reservation_id, "amount": amount, "expiresAt": now + ttl, "purpose": purpose, "createdAt": now}
        entry = _entry(
            user_id=user_id,
            kind="reserve",
            key=reservation_id,
            amount=amount,
            delta=reserve_delta(amount),
            now=now,
            reservation_id=reservation_id,
        )
        if await self._journaled(seen) and (doc := await self.account(user_id)) is not None:
            return Held(doc, await self._first_hold(doc, reservation_id, ttl), applied=False)
        for _ in range(3):
            doc = await self._apply(
                {"credits": {"$gte": amount}, "holds.id": {"$ne": reservation_id}},
                user_id=user_id,
                delta=reserve_delta(amount),
                entry=entry,
                now=now,
                push={"holds": hold},
                remember=True,
            )
            if doc is not None:
                return Held(doc, {**hold, "status": "pending"}, applied=True)
            doc = await self.account(user_id)
            if doc is None:
                await self.ensure_account(user_id=user_id, email=email, now=now)
                continue
            if seen in doc["seen"] or await self._entry_anywhere(doc, seen) is not None:
                return Held(doc, await self._first_hold(doc, reservation_id, ttl), applied=False)
            if doc["credits"] < amount:
                raise InsufficientCredits(
                    f"{amount} credits needed, {doc['credits']} available", balance=doc["credits"], price=amount
                )
        raise Conflict("the account changed too often to reserve; retry")

    async def _first_hold(self, doc: Doc, reservation_id: str, ttl: timedelta) -> Doc:
        for hold in doc["holds"]:
            if hold["id"] == reservation_id:
                return {**hold, "status": "pending"}
        first = await self._resolution(doc, reservation_id)
        reserve = await self._entry_anywhere(doc, entry_id("reserve", reservation_id))
        if reserve is None or first is None:
            raise Conflict("reservation state unknown")
        return {
            "id": reservation_id,
            "amount": reserve["amount"],
            "expiresAt": reserve["at"] + ttl,
            "status": TERMINAL[first["kind"]],
        }

    async def _journaled(self, eid: str) -> bool:
        return await self.journal.find_one({"_id": eid}, {"_id": 1}) is not None

    async def _entry_anywhere(self, doc: Doc, eid: str) -> Doc | None:
        """An entry from the outbox or, once flushed, the journal (read in that order, so none is missed)."""
        for entry in doc["outbox"]:
            if entry["_id"] == eid:
                return entry  # type: ignore[no-any-return]
        return await self.journal.find_one({"_id": eid})

    async def _resolution(self, doc: Doc, reservation_id: str) -> Doc | None:
        for kind in TERMINAL:
            entry = await self._entry_anywhere(doc, entry_id(kind, reservation_id))
            if entry is not None:
                return entry
        return None

    async def resolve(
        self, *, user_id: str, reservation_id: str, held: int, used: int, kind: EntryKind, now: datetime
    ) -> Resolution:
        """Commit `used` (or release/expire with used=0) of a pending reservation holding `held`.

        A repeat of the same resolution replays the first; any other resolution of a resolved
        reservation is refused."""
        check_resolution(held=held, used=used)
        delta = resolve_delta(held=held, used=used)
        entry = _entry(
            user_id=user_id,
            kind=kind,
            key=reservation_id,
            amount=used,
            delta=delta,
            now=now,
            reservation_id=reservation_id,
        )
        match: Doc = {"id": reservation_id, "amount": held}
        if kind == "expire":
            match["expiresAt"] = {"$lte": now}
        doc = await self._apply(
            {"holds": {"$elemMatch": match}},
            user_id=user_id,
            delta=delta,
            entry=entry,
            now=now,
            pull={"holds": {"id": reservation_id}},
        )
        if doc is not None:
            return Resolution(doc, kind, used, applied=True)
        doc = await self.account(user_id)
        if doc is None:
            raise Conflict("no such reservation")
        hold = next((h for h in doc["holds"] if h["id"] == reservation_id), None)
        if hold is not None:
            if hold["amount"] != held:
                raise ValidationFailed(f"reservation holds {hold['amount']}, not {held}", reserved=hold["amount"])
            raise Conflict("reservation has not expired")
        first = await self._resolution(doc, reservation_id)
        if first is None:
            raise Conflict("no such reservation")
        replay_or_refuse(first=first["kind"], first_used=first["amount"], requested=kind, requested_used=used)
        return Resolution(doc, first["kind"], first["amount"], applied=False)

    async def due_holds(self, *, now: datetime, limit: int = 100) -> list[tuple[str, Doc]]:
        """Pending holds whose time is up, oldest accounts first."""
        cursor = self.accounts.find({"holds.expiresAt": {"$lte": now}}, {"holds": 1}).limit(limit)
        return [(doc["_id"], hold) async for doc in cursor for hold in doc["holds"] if hold["expiresAt"] <= now]

    # -- journal ---------------------------------------------------------------------------

    async def history(self, *, user_id: str, limit: int, before: str | None) -> tuple[list[JournalEntry], str | None]:
        """The account's journal, newest first, by keyset pagination on (at, _id)."""
        query: Doc = {"userId": user_id}
        if before:
            at_iso, _, last_id = base64.urlsafe_b64decode(before.encode()).decode().partition("|")
            at = datetime.fromisoformat(at_iso)
            query["$or"] = [{"at": {"$lt": at}}, {"at": at, "_id": {"$lt": last_id}}]
        docs = await self.journal.find(query).sort([("at", DESCENDING), ("_id", DESCENDING)]).limit(limit + 1).to_list()
        entries = [journal_entry(d) for d in docs[:limit]]
        cursor = None
        if len(docs) > limit:
            last = docs[limit - 1]
            cursor = base64.urlsafe_b64encode(f"{last['at'].isoformat()}|{last['_id']}".encode()).decode()
        return entries, cursor

    async def dirty_accounts(self, *, limit: int) -> list[Doc]:
        return await self.accounts.find({"outbox.0": {"$exists": True}}, {"outbox": 1}).limit(limit).to_list()
