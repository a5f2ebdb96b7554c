"""The MongoDB client every service that stores documents uses: pymongo's async client,
timezone-aware, nothing beyond what real MongoDB also supports."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from common.settings import CommonSettings

LOCAL_URL = "mongodb://127.0.0.1:27017/?directConnection=true"


def mongo_client(settings: CommonSettings) -> AsyncMongoClient[dict[str, Any]]:
    url = settings.mongodb_url.get_secret_value() if settings.mongodb_url else LOCAL_URL
    return AsyncMongoClient(url, tz_aware=True, serverSelectionTimeoutMS=5000, appname=settings.service_name)


def database(client: AsyncMongoClient[dict[str, Any]], settings: CommonSettings) -> AsyncDatabase[dict[str, Any]]:
    return client[settings.mongodb_database]
