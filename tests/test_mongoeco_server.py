"""tools/mongoeco_server.py skips mongoeco's whole-collection `_id` scans (on insert, on a lookup
that misses, on an update by `_id` and more) for ids without a number in them; duplicates must
still be refused, lookups must still find what is there, numeric look-alikes included, and an
update must still change only a document its whole filter matches. It records no change events,
which no wire client can read: a change stream is refused, and writes still reach the file. Each
collection's indexes hold its own documents only, and still answer its queries (and hints)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from bson.int64 import Int64
from pymongo import AsyncMongoClient, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from devstack import Process, free_port, mongoeco_argv, mongoeco_uri

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def served(log_file: Path, database: Path | None = None) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    """The launcher serving `database` (SQLite; None: the memory engine), and a client of it."""
    argv = mongoeco_argv(port=free_port(), sqlite=database)
    proc = Process("mongo", argv, env=dict(os.environ), log_file=log_file, echo=False).start()
    client: AsyncMongoClient[dict[str, Any]] | None = None
    try:
        client = AsyncMongoClient(mongoeco_uri(proc))
        yield client
    finally:
        if client is not None:
            await client.close()
        proc.stop()


@pytest.fixture(params=["memory", "sqlite"])
async def collection(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncCollection[Any]]:
    database = tmp_path / "mongo.sqlite" if request.param == "sqlite" else None
    async with served(tmp_path / "mongo.log", database) as client:
        yield client["t"]["docs"]


async def test_duplicate_string_ids_are_refused(collection: AsyncCollection[Any]) -> None:
    col = collection
    await col.insert_many([{"_id": f"e{i}"} for i in range(50)])
    with pytest.raises(DuplicateKeyError):
        await col.insert_one({"_id": "e7"})
    with pytest.raises(BulkWriteError) as refused:
        await col.insert_many([{"_id": "new"}, {"_id": "e3"}], ordered=False)
    assert [e["code"] for e in refused.value.details["writeErrors"]] == [11000]
    assert await col.count_documents({}) == 51


async def test_numeric_look_alike_ids_are_refused(collection: AsyncCollection[Any]) -> None:
    col = collection
    await col.insert_one({"_id": 1})
    for same in (1.0, Int64(1)):
        with pytest.raises(DuplicateKeyError):
            await col.insert_one({"_id": same})
    await col.insert_one({"_id": "1"})
    assert await col.count_documents({}) == 2


async def test_id_lookups_find_what_is_there_and_nothing_else(collection: AsyncCollection[Any]) -> None:
    oid = ObjectId()
    await collection.insert_many([{"_id": "e1"}, {"_id": "e12"}, {"_id": 1}, {"_id": oid}])
    assert await collection.find_one({"_id": "e1"}) == {"_id": "e1"}
    assert await collection.find_one({"_id": "missing"}) is None
    assert await collection.find_one({"_id": ObjectId()}) is None
    assert await collection.find_one({"_id": oid}) == {"_id": oid}
    assert await collection.find_one({"_id": 1.0}) == {"_id": 1}  # numeric look-alikes still match
    assert [d["_id"] for d in await collection.find({"_id": re.compile("^e1")}).sort("_id", 1).to_list()] == [
        "e1",
        "e12",
    ]
    assert await collection.find_one_and_update({"_id": "missing"}, {"$set": {"x": 1}}) is None


async def test_an_update_by_id_and_more_changes_only_a_matching_document(collection: AsyncCollection[Any]) -> None:
    col = collection
    await col.insert_many([{"_id": f"a{i}", "seq": i, "tags": ["x"]} for i in range(30)])
    assert (await col.update_one({"_id": "a7", "seq": 7}, {"$set": {"v": 1}})).modified_count == 1
    assert (await col.update_one({"_id": "a7", "seq": 8}, {"$set": {"v": 2}})).matched_count == 0
    assert (await col.update_one({"_id": "a8", "seq": {"$not": {"$gte": 8}}}, {"$set": {"v": 3}})).matched_count == 0
    assert (await col.update_one({"_id": "a8", "seq": {"$lt": 9}, "tags": "x"}, {"$set": {"v": 4}})).matched_count == 1
    assert (await col.update_one({"_id": "nobody", "seq": 1}, {"$set": {"v": 5}})).matched_count == 0
    assert (await col.update_one({"_id": "a9", "seq": None}, {"$set": {"v": 6}})).matched_count == 0
    await col.insert_one({"_id": "legacy"})
    assert (await col.update_one({"_id": "legacy", "seq": None}, {"$set": {"v": 7}})).matched_count == 1
    assert {d["_id"]: d.get("v") async for d in col.find({"v": {"$exists": True}})} == {"a7": 1, "a8": 4, "legacy": 7}


async def test_a_change_stream_is_refused_so_no_change_event_could_be_read(collection: AsyncCollection[Any]) -> None:
    with pytest.raises(OperationFailure):
        async with await collection.watch() as stream:
            await stream.try_next()


async def test_writes_without_change_events_survive_a_restart(tmp_path: Path) -> None:
    database = tmp_path / "mongo.sqlite"
    for attempt in range(2):
        async with served(tmp_path / f"mongo-{attempt}.log", database) as client:
            docs = client["t"]["docs"]
            if attempt == 0:
                await docs.insert_many([{"_id": "a", "n": 1}, {"_id": "b", "n": 1}])
                await docs.update_one({"_id": "a"}, {"$inc": {"n": 1}})
                await docs.delete_one({"_id": "b"})
            else:
                assert await docs.find().to_list() == [{"_id": "a", "n": 2}]


async def test_a_command_of_many_statements_lets_other_clients_in_between_them(tmp_path: Path) -> None:
    """The SQLite engine's operations run on the server's thread: a bulk update (a checkpoint's)
    must still let another client's read through between its statements, as the engine's lock
    did, rather than hold every other client until its last statement."""
    count = 3000
    async with served(tmp_path / "mongo.log", tmp_path / "mongo.sqlite") as client:
        docs = client["t"]["docs"]
        await docs.insert_many([{"_id": f"d{i}", "x": 0} for i in range(count)])
        bulk = asyncio.create_task(
            docs.bulk_write([UpdateOne({"_id": f"d{i}"}, {"$set": {"x": 1}}) for i in range(count)])
        )
        async with asyncio.timeout(60):  # until the bulk's first statement is seen done
            while (first := await docs.find_one({"_id": "d0"})) is None or first["x"] != 1:
                pass
        last = await docs.find_one({"_id": f"d{count - 1}"})
        assert last == {"_id": f"d{count - 1}", "x": 0}  # read while the bulk was still under way
        assert (await bulk).modified_count == count
        assert await docs.count_documents({"x": 1}) == count


async def test_each_collections_indexes_hold_its_own_documents_and_still_answer_its_queries(tmp_path: Path) -> None:
    database = tmp_path / "mongo.sqlite"

    def physical() -> dict[str, str]:
        """Each physical index over the shared documents table: its collection's name -> its SQL."""
        with sqlite3.connect(database) as conn:
            return {
                f"{coll}.{name}": sql
                for coll, name, sql in conn.execute(
                    "SELECT i.coll_name, i.name, m.sql FROM indexes AS i JOIN sqlite_master AS m "
                    "ON m.name = i.physical_name AND m.tbl_name = 'documents'"
                )
            }

    for attempt in range(2):
        async with served(tmp_path / "m.log", database) as client:
            log, usage = client["t"]["log"], client["t"]["usage"]
            if attempt == 0:
                await log.create_index([("at", 1)])
                await usage.create_index([("at", 1)])
                await usage.create_index([("user", 1), ("at", -1)])
                await log.insert_many([{"_id": f"l{i}", "at": i} for i in range(20)])
                await usage.insert_many([{"_id": f"u{i}", "at": i, "user": f"x{i % 2}"} for i in range(20)])
            assert [d["_id"] async for d in log.find({"at": {"$gte": 17}}).sort("at", 1)] == ["l17", "l18", "l19"]
            assert [d["_id"] async for d in usage.find({"at": {"$lt": 2}}).sort("at", -1)] == ["u1", "u0"]
            assert [d["_id"] async for d in log.find({"at": {"$gte": 18}}).hint("at_1")] == ["l18", "l19"]
            with pytest.raises(OperationFailure):
                await log.find({"at": 1}).hint("no_such_index").to_list()
            assert [d["_id"] async for d in usage.find({"user": "x1", "at": {"$gt": 14}}).sort("at", -1)] == [
                "u19",
                "u17",
                "u15",
            ]
        indexes = physical()
        assert sorted(indexes) == ["log.at_1", "usage.at_1", "usage.user_1_at_-1"]
        for name, sql in indexes.items():
            assert sql.endswith(f"WHERE db_name = 't' AND coll_name = '{name.split('.')[0]}'"), sql
        if attempt == 0:  # as a store written by mongoeco itself has them: over every collection
            with sqlite3.connect(database) as conn:
                for name, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE name LIKE 'idx_%'").fetchall():
                    conn.execute(f'DROP INDEX "{name}"')
                    conn.execute(sql.split(" WHERE db_name")[0])
            assert not any("WHERE" in sql for sql in physical().values())
