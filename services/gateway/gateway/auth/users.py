"""The users collection: who a verified token belongs to, and with which role.

Documents keep the seed's fields (`_id` = the identity-provider user id, `clerkUserId`,
`userEmail`, `role`, `metadata`, `createdAt`, `updatedAt`; `deletedAt` once Clerk says the
user is gone, `clerkEventAt` the time of the latest Clerk event applied). A user is created on
first sight with `$setOnInsert`, exactly as the credits service does on its own first sight, so
whichever comes first, the document is the same.

Clerk's events arrive in any order (Svix retries each on its own schedule), so an event older
than the one on record changes nothing. `user.deleted` leaves a tombstone even for a user never
seen here: the document stays, with `deletedAt`, so a token still valid for that user is refused
rather than creating the user again on first sight.

Roles live here, so an admin can change one; each gateway trusts its copy of a user for
USER_CACHE_TTL_S, so a change shows on every gateway within that time (at once on the one
that made it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict, TypeIs, cast, get_args

from pydantic import BaseModel, Field, ValidationError
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from common.contracts import Actor, Role
from common.errors import ServiceUnavailable, Unauthenticated
from gateway.auth.clerk import Identity

log = logging.getLogger(__name__)

Doc = dict[str, Any]
ROLES: tuple[Role, ...] = get_args(Role)
# Actor.email must look like an address; a Clerk token without an `email` claim, for a user
# no webhook has described yet, gets a reserved-TLD placeholder (RFC 2606), never stored.
UNKNOWN_EMAIL_DOMAIN = "unknown.invalid"
MAX_CACHED = 50_000


class UserDoc(TypedDict):
    """A user as stored: created on first sight by this gateway or the credits service (the same
    seed), described and deleted by Clerk's events, its role set by an admin."""

    _id: str  # the identity-provider user id
    createdAt: datetime
    clerkUserId: NotRequired[str]
    userEmail: NotRequired[str | None]
    role: NotRequired[str]  # a Role; anything else is read as user
    metadata: NotRequired[dict[str, Any]]
    updatedAt: NotRequired[datetime]
    deletedAt: NotRequired[datetime | None]
    clerkEventAt: NotRequired[datetime]


class UserView(BaseModel):
    id: str
    email: str = Field(description="The address Clerk (or the first token) gave; may be empty.")
    role: Role
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None


class UserPage(BaseModel):
    users: list[UserView]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page.")


def view(doc: UserDoc) -> UserView:
    return UserView(
        id=doc["_id"],
        email=doc.get("userEmail") or "",
        role=_role(doc),
        created_at=doc["createdAt"],
        updated_at=doc.get("updatedAt", doc["createdAt"]),
        deleted_at=doc.get("deletedAt"),
    )


def _is_role(value: object) -> TypeIs[Role]:
    return value in ROLES


def _role(doc: UserDoc) -> Role:
    role = doc.get("role", "user")
    if not _is_role(role):
        log.warning("unknown role in users collection; treated as user", extra={"user_id": doc["_id"], "role": role})
        return "user"
    return role


def _actor(identity: Identity, doc: UserDoc) -> Actor:
    if doc.get("deletedAt") is not None:
        raise Unauthenticated("this account has been deleted")
    role = identity.role or _role(doc)
    for email in (identity.email, doc.get("userEmail")):
        if email:
            with contextlib.suppress(ValidationError):  # not an address Actor accepts: try the next
                return Actor(id=identity.id, email=email, role=role)
    return Actor(id=identity.id, email=f"{identity.id}@{UNKNOWN_EMAIL_DOMAIN}", role=role)


class UserDirectory:
    def __init__(self, db: AsyncDatabase[Doc], *, cache_ttl_s: float) -> None:
        self.users = cast("AsyncCollection[UserDoc]", db["users"])  # see UserDoc
        self._ttl = cache_ttl_s
        self._cache: dict[str, tuple[float, UserDoc]] = {}
        self._loading: dict[str, asyncio.Future[UserDoc]] = {}

    async def create_indexes(self) -> None:
        await self.users.create_index([("userEmail", ASCENDING)])

    async def actor(self, identity: Identity) -> Actor:
        """The acting user for a verified identity, creating the user on first sight."""
        return _actor(identity, await self._known(identity))

    def cached_actor(self, identity: Identity) -> Actor | None:
        """The acting user if this gateway knows them without IO (a fresh cached copy), else None."""
        cached = self._cache.get(identity.id)
        if cached is None or cached[0] <= time.monotonic():
            return None
        return _actor(identity, cached[1])

    async def _known(self, identity: Identity) -> UserDoc:
        cached = self._cache.get(identity.id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        # One load per user at a time: a burst of first requests creates the user once.
        pending = self._loading.get(identity.id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[UserDoc] = asyncio.get_running_loop().create_future()
        self._loading[identity.id] = future
        try:
            doc = await self._load(identity)
            future.set_result(doc)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # marked retrieved: waiters re-raise it, nobody else needs to
            raise
        finally:
            del self._loading[identity.id]
        now = time.monotonic()
        if len(self._cache) >= MAX_CACHED:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
        self._cache[identity.id] = (now + self._ttl, doc)
        return doc

    async def _load(self, identity: Identity) -> UserDoc:
        try:
            doc = await self.users.find_one({"_id": identity.id})
            if doc is None:
                doc = await self._first_sight(identity)
            elif identity.email and not doc.get("userEmail") and doc.get("deletedAt") is None:
                doc = await self.users.find_one_and_update(
                    {"_id": identity.id},
                    {"$set": {"userEmail": identity.email, "updatedAt": datetime.now(UTC)}},
                    return_document=ReturnDocument.AFTER,
                )
        except PyMongoError as exc:
            log.warning("users collection unreachable", extra={"error": repr(exc)})
            raise ServiceUnavailable("the user directory is unavailable") from exc
        if doc is None:
            raise ServiceUnavailable("the user directory lost a user")
        return doc

    async def _first_sight(self, identity: Identity) -> UserDoc | None:
        now = datetime.now(UTC)
        seed = {
            "clerkUserId": identity.id,
            "userEmail": identity.email or "",
            "role": identity.role or "user",
            "metadata": {},
            "createdAt": now,
            "updatedAt": now,
        }
        # DuplicateKeyError: another gateway (or the credits service) created it a moment ago.
        with contextlib.suppress(DuplicateKeyError):
            await self.users.update_one({"_id": identity.id}, {"$setOnInsert": seed}, upsert=True)
        log.info("user seen for the first time", extra={"user_id": identity.id, "provider": identity.provider})
        return await self.users.find_one({"_id": identity.id})

    def forget(self, user_id: str) -> None:
        self._cache.pop(user_id, None)

    # -- administration and Clerk webhooks ----------------------------------------------------

    async def find(self, user_id: str) -> UserView | None:
        doc = await self.users.find_one({"_id": user_id})
        return view(doc) if doc is not None else None

    async def set_role(self, user_id: str, role: Role) -> UserView | None:
        doc = await self.users.find_one_and_update(
            {"_id": user_id},
            {"$set": {"role": role, "updatedAt": datetime.now(UTC)}},
            return_document=ReturnDocument.AFTER,
        )
        self.forget(user_id)
        return view(doc) if doc is not None else None

    async def page(self, *, limit: int, after: str | None, role: Role | None) -> UserPage:
        query: Doc = {}
        if after:
            query["_id"] = {"$gt": after}
        if role:
            query["role"] = role
        docs = await self.users.find(query).sort("_id", ASCENDING).limit(limit + 1).to_list()
        users = [view(d) for d in docs[:limit]]
        return UserPage(users=users, next_cursor=users[-1].id if len(docs) > limit else None)

    async def described(self, *, user_id: str, email: str, metadata: Mapping[str, Any], event_at: datetime) -> bool:
        """Clerk created or updated the user: keep email and public metadata; never touch the role.
        False when a later event is on record already: then nothing changes."""
        now = datetime.now(UTC)
        seed = {"clerkUserId": user_id, "role": "user", "createdAt": now}
        changes = {"userEmail": email, "metadata": dict(metadata), "updatedAt": now, "clerkEventAt": event_at}
        not_older = {"_id": user_id, "clerkEventAt": {"$not": {"$gt": event_at}}}
        try:
            result = await self.users.update_one(not_older, {"$set": changes, "$setOnInsert": seed}, upsert=True)
        except DuplicateKeyError:  # it exists with a later event, or a first sight inserted it a moment ago
            applied = (await self.users.update_one(not_older, {"$set": changes})).matched_count == 1
        else:
            applied = result.upserted_id is not None or result.matched_count == 1
        self.forget(user_id)
        return applied

    async def deleted(self, user_id: str, *, event_at: datetime) -> None:
        """Clerk deleted the user: a tombstone, kept even for a user this platform never saw."""
        now = datetime.now(UTC)
        seed = {"clerkUserId": user_id, "userEmail": "", "role": "user", "metadata": {}, "createdAt": now}
        update = {
            "$min": {"deletedAt": now},  # a repeated deletion keeps the first time
            "$max": {"clerkEventAt": event_at},
            "$set": {"updatedAt": now},
            "$setOnInsert": seed,
        }
        try:
            await self.users.update_one({"_id": user_id}, update, upsert=True)
        except DuplicateKeyError:  # a first sight inserted it a moment ago
            del update["$setOnInsert"]
            await self.users.update_one({"_id": user_id}, update)
        self.forget(user_id)

    async def is_deleted(self, user_id: str) -> bool:
        return await self.users.count_documents({"_id": user_id, "deletedAt": {"$ne": None}}, limit=1) > 0
