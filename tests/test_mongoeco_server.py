"""tools/mongoeco_server.py skips mongoeco's whole-collection `_id` scan on insert for ids
without a number in them; duplicates must still be refused, numeric look-alikes included."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from bson.int64 import Int64
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from devstack import ROOT, Process, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(params=["memory", "sqlite"])
async def collection(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncCollection[Any]]:
    argv = [sys.executable, str(ROOT / "tools" / "mongoeco_server.py"), "--port", str(free_port())]
    if request.param == "sqlite":
        argv += ["--sqlite", str(tmp_path / "mongo.sqlite")]
    proc = Process("mongo", argv, env=dict(os.environ), log_file=tmp_path / "mongo.log", echo=False).start()
    client: AsyncMongoClient[dict[str, Any]] | None = None
    try:
        line = proc.wait_for_line(lambda s: s.startswith('{"uri"'), timeout=60)
        client = AsyncMongoClient(json.loads(line)["uri"])
        yield client["t"]["docs"]
    finally:
        if client is not None:
            await client.close()
        proc.stop()


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
