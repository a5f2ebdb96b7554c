"""Run mongoeco as a MongoDB wire-protocol server on this machine (no MongoDB package here).

    python tools/mongoeco_server.py --port 27017 [--sqlite .data/mongo.db]

Prints one JSON line {"uri": ...} once it accepts connections, then serves until SIGTERM/SIGINT.
Memory engine by default; --sqlite keeps data across restarts.

mongoeco 4.11 checks a single inserted document's `_id` against every document already in
the collection (a scan meant for numeric ids, where 1 and 1.0 are the same key but not the
same stored key), so each insert costs O(collection size): 3 ms into an empty collection,
17 ms at 2,000 documents, and any growing collection (a journal, usage records) slows the
whole server down over a run. Real MongoDB looks the `_id` up in its index. The engines
below keep the scan for ids holding a number and skip it otherwise; the exact stored-key
check before it still refuses every duplicate. Likewise the memory engine scans the whole
collection when a query on a string or ObjectId `_id` misses (2 ms at 100 documents, 15 ms
at 5,600), and the SQLite engine scans for any find on `_id` alone (3.5 ms at 100, 28 ms at
5,600); the memory engine now answers a miss at once and the SQLite one reads the key. An
update whose filter is `_id` and more (`{_id, seq: 3}`) made the SQLite engine compile it to
SQL, which first scans the collection for the types its fields hold, again after every write
(6 ms per update at 10,000 documents, 13 ms at 20,000); it now reads the document by key and
checks the rest of the filter with mongoeco's own matcher (0.7 ms, flat).
tests/test_mongoeco_server.py shows that duplicates are refused and lookups still match.

The SQLite engine keeps every collection's documents in one table and builds each MongoDB
index as an expression index over that whole table, so a document written to any collection
is entered into every collection's indexes (13 in the platform's database: 13 more B-trees
and JSON extractions per insert, whichever collection it went to, each growing with all the
others' history). The launcher confines each such index to its own collection, as MongoDB's
indexes are: a partial index (`WHERE db_name = .. AND coll_name = ..`), which SQLite still
plans every query of that collection with (mongoeco's queries name the collection, and SQLite
matches a partial index against the values bound). A page of the ledger log then takes 47
writes to SQLite's log file instead of 81, and its server 5-15% less CPU (measured 2026-12-06
on this machine; no change measurable in the whole stack's CPU beside the run-to-run noise).
A store written before is confined when the server starts. A query's `hint` is checked and
then left to SQLite's planner (mongoeco's INDEXED BY cannot name a partial index).

The SQLite engine also hands every committed write to its change-stream hub: it takes a
lease in SQLite, starts and joins a heartbeat thread, reads the outbox back and checkpoints
it, on each insert or update (a third of the server's CPU per write, and thread churn that
slows every other process on a 2-core machine). No wire client can open a change stream on
mongoeco ($changeStream is unsupported), so the launcher hands the outbox over at most once
a second; the outbox keeps being compacted, and nothing a client can see changes.
Further, since nothing on the wire can ever read a change event, the launcher records none
(`_record_no_change_events`): mongoeco otherwise serializes every written document a second
time into an outbox row in the same SQLite transaction, which is about a third of an insert's
server CPU (1.50 -> 1.03 ms per inserted turn-sized document, 1.95 -> 1.46 ms wall, measured
2026-12-06 on this machine). The document itself is written and committed exactly as before.

Last, the SQLite engine runs each operation on a pool of worker threads: a hop there and one
back per operation (a future, a wake-up of the event loop through its self-pipe, the GIL handed
over each way and, while the loop is busy, waited for), although the engine's own lock lets only
one operation at a time touch SQLite. The launcher runs them on the server's thread instead,
each in a copy of the context as before, and lets the other clients' operations in after each
one, as the lock did: a command of many statements (a checkpoint's bulk update of 1,000
accounts) does not hold every other client until its last (it cut the ledger's reserve+commit
pairs over 1,000 accounts from 954 to 730 per second until it yielded; 1,354 since). Measured
on this machine (2026-12-06, SQLite engine, three alternating runs of each: 1,500 sequential
inserts, 1,500 find_one_and_update, then 16 clients inserting at once): 16 clients' inserts
719-921 -> 1,676-1,724 per second, and the server's CPU for the whole run 7.7-9.7 -> 6.1-6.2 s;
one operation at a time, the latency moved less than the runs' spread (insert p50 1.04-1.40 ->
0.99-1.21 ms). (mongoeco's server cannot run on uvloop: it calls asyncio's
`Server.abort_clients`, which uvloop's server lacks.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from functools import partial
from typing import Any

from bson import ObjectId
from mongoeco.api._async.collection import AsyncCollection
from mongoeco.core.filtering import QueryEngine
from mongoeco.core.operation_context import ChangePublicationPolicy
from mongoeco.core.query_plan import AndCondition, EqualsCondition
from mongoeco.engines.memory import MemoryEngine
from mongoeco.engines.semantic_core import EngineFindSemantics
from mongoeco.engines.sqlite import SQLiteEngine
from mongoeco.wire import AsyncMongoEcoProxyServer

from common import heap

# `scan_payload_id` forces the scan for every id; without it mongoeco still scans when the
# id holds a number, after looking the exact stored key up.


class IndexedIdMemoryEngine(MemoryEngine):
    def _ensure_unique_indexes(self, db_name: str, coll_name: str, candidate: Any, **options: Any) -> None:
        super()._ensure_unique_indexes(db_name, coll_name, candidate, **{**options, "scan_payload_id": False})

    def _candidate_items_for_plan_locked(self, coll: Any, query_plan: Any, **options: Any) -> list[tuple[Any, Any]]:
        # A query on a string or ObjectId `_id` that misses its stored key matches nothing:
        # answer at once instead of scanning the collection for a look-alike.
        id_lookup = self._direct_id_lookup_from_plan(query_plan)
        if (
            isinstance(id_lookup, str | ObjectId)
            and options.get("collation") is None
            and self._storage_key(id_lookup) not in coll
        ):
            return []
        return super()._candidate_items_for_plan_locked(coll, query_plan, **options)


class IndexedIdSQLiteEngine(SQLiteEngine):
    DISPATCH_EVERY_S = 1.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._dispatched_at = float("-inf")

    async def _run_blocking(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        # On the server's own thread (see the module's docstring): in its own copy of the
        # context, as the engine's worker threads ran it; then the other clients' operations get
        # their turn, as they did between two of this one's under the engine's lock (a command of
        # many statements, such as a checkpoint's bulk update, must not hold the server for all).
        result = contextvars.copy_context().run(partial(func, *args, **kwargs))
        await asyncio.sleep(0)
        return result

    def _connect_sync(self) -> None:
        super()._connect_sync()
        with self._lock:
            _confine_indexes(self._require_connection(None))

    def _create_index_sync(self, *args: Any, **kwargs: Any) -> str:
        name: str = super()._create_index_sync(*args, **kwargs)
        with self._lock:
            _confine_indexes(self._require_connection(kwargs.get("context")))
        return name

    def _build_select_sql(self, db_name: str, coll_name: str, plan: Any, **options: Any) -> tuple[str, list[object]]:
        # mongoeco turns a hint into SQLite's INDEXED BY, which cannot name a partial index: the
        # hint is still checked (an index that does not exist is refused), then SQLite plans.
        if options.get("hint") is not None:
            self._resolve_hint_index(db_name, coll_name, options["hint"], plan=plan)
            options["hint"] = None
        sql: tuple[str, list[object]] = super()._build_select_sql(db_name, coll_name, plan, **options)
        return sql

    def dispatch_committed_changes(self, consumer_id: str, consumer: Any) -> None:
        # Hubs come and go with collection objects, so the pace is the server's, not a hub's.
        now = time.monotonic()
        if now - self._dispatched_at < self.DISPATCH_EVERY_S:
            return
        self._dispatched_at = now
        super().dispatch_committed_changes(consumer_id, consumer)

    def _validate_document_against_unique_indexes(
        self, db_name: str, coll_name: str, document: Any, **options: Any
    ) -> None:
        super()._validate_document_against_unique_indexes(
            db_name, coll_name, document, **{**options, "scan_payload_id": False}
        )

    def _select_first_document_for_plan(
        self, db_name: str, coll_name: str, plan: Any, *, hint: Any = None, context: Any = None
    ) -> tuple[str, Any] | None:
        # The document an update targets by `_id` and more ({_id, seq: 3}): read it by key and
        # check the rest of the filter on it, instead of compiling the filter to SQL, which first
        # scans the collection for the types its fields hold (again after every write).
        key = _id_clause(plan) if hint is None else None
        if key is None:
            return super()._select_first_document_for_plan(db_name, coll_name, plan, hint=hint, context=context)
        found = super()._select_first_document_for_plan(db_name, coll_name, key, context=context)
        if found is None or not QueryEngine.match_plan(found[1], plan):
            return None
        return found

    def scan_find_semantics(
        self, db_name: str, coll_name: str, semantics: EngineFindSemantics, *, context: Any = None
    ) -> AsyncIterable[Any]:
        # A find on nothing but a string or ObjectId `_id`: one keyed read instead of a scan.
        plan = semantics.query_plan
        if not (
            isinstance(plan, EqualsCondition)
            and plan.field == "_id"
            and isinstance(plan.value, str | ObjectId)
            and semantics.collation is None
            and semantics.text_query is None
        ):
            return super().scan_find_semantics(db_name, coll_name, semantics, context=context)

        async def keyed() -> AsyncIterator[Any]:
            if semantics.skip:
                return
            document = await self.get_document(
                db_name, coll_name, plan.value, projection=semantics.projection, context=context
            )
            if document is not None:
                yield document

        return keyed()


def _confine_indexes(conn: sqlite3.Connection) -> None:
    """Make each collection's expression indexes over the shared documents table hold that
    collection's documents only (those not confined yet), in one transaction."""
    rows = conn.execute(
        "SELECT i.db_name, i.coll_name, m.name, m.sql FROM indexes AS i JOIN sqlite_master AS m "
        "ON m.type = 'index' AND m.name = i.physical_name AND m.tbl_name = 'documents'"
    ).fetchall()
    wide = [(name, f"{sql} {_scope(db, coll)}") for db, coll, name, sql in rows if not sql.endswith(_scope(db, coll))]
    if not wide:
        return
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN IMMEDIATE")
    try:
        for name, confined in wide:
            conn.execute(f"DROP INDEX {_quoted(name)}")
            conn.execute(confined)
    except BaseException:
        if own:
            conn.rollback()
        raise
    if own:
        conn.commit()


def _scope(db_name: str, coll_name: str) -> str:
    return f"WHERE db_name = {_literal(db_name)} AND coll_name = {_literal(coll_name)}"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _id_clause(plan: Any) -> EqualsCondition | None:
    """The `_id == <string or ObjectId>` clause of a conjunction, if it has one."""
    if not isinstance(plan, AndCondition):
        return None
    return next(
        (
            c
            for c in plan.clauses
            if isinstance(c, EqualsCondition) and c.field == "_id" and isinstance(c.value, str | ObjectId)
        ),
        None,
    )


def _record_no_change_events() -> None:
    """Every collection operation of this server publishes no change event: no wire client can
    open a change stream here ($changeStream is refused), so none could ever be read."""
    create = AsyncCollection._new_operation_context

    def without_events(self: AsyncCollection, **options: Any) -> Any:
        return create(self, **{**options, "publication": ChangePublicationPolicy.DISABLED})

    AsyncCollection._new_operation_context = without_events  # type: ignore[method-assign]


async def serve(host: str, port: int, sqlite: str | None) -> None:
    _record_no_change_events()
    engine = IndexedIdSQLiteEngine(sqlite) if sqlite else IndexedIdMemoryEngine()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncMongoEcoProxyServer(engine=engine, host=host, port=port) as server:
        print(json.dumps({"uri": server.address.uri}), flush=True)
        heap.settle()
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=27017)
    parser.add_argument("--sqlite", default=None, help="SQLite file to persist to (default: in memory)")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.host, args.port, args.sqlite))
    except OSError as exc:
        sys.exit(f"mongoeco could not listen on {args.host}:{args.port}: {exc}")


if __name__ == "__main__":
    main()
