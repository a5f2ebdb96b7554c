"""Credits test fixtures: a fresh database per test on the real MongoDB-protocol server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from credits.repository import AccountRepository


@pytest.fixture
async def db(mongodb_url: str) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True)
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield client[name]
    await client.drop_database(name)
    await client.close()


@pytest.fixture
async def repo(db: AsyncDatabase[dict[str, Any]]) -> AccountRepository:
    repository = AccountRepository(db, signup_credits=10)
    await repository.create_indexes()
    return repository
