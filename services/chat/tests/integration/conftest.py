"""Chat integration fixtures: a fresh database per test on the real MongoDB-protocol server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase


@pytest.fixture
async def database(mongodb_url: str, namespace: str) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True)
    db = client[f"t_{namespace}"]
    yield db
    await client.drop_database(db.name)
    await client.close()
