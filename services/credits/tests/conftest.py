"""Credits test fixtures: a fresh database per test on the real MongoDB-protocol server, and
ledger replicas on it (tests.support.ledger)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from credits.log import LedgerLog
from tests.support.ledger import Clock, Replica


@pytest.fixture
async def db(mongodb_url: str) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True)
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield client[name]
    await client.drop_database(name)
    await client.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def replicas(db: AsyncDatabase[dict[str, Any]], clock: Clock) -> AsyncIterator[list[Replica]]:
    """Start replicas with `replicas.append(Replica(db, clock))`; all are killed at the end."""
    started: list[Replica] = []
    yield started
    for replica in started:
        await replica.kill()


@pytest.fixture
async def ledger(db: AsyncDatabase[dict[str, Any]], clock: Clock, replicas: list[Replica]) -> Replica:
    await LedgerLog(db).create_indexes()
    replica = Replica(db, clock)
    replicas.append(replica)
    return replica
