"""The `find` commands a MongoDB client sends, for tests that show how a read reaches the store
(by `_id` only, how many documents): a client of the test's server with a listener on it."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from pymongo import AsyncMongoClient, monitoring


class Finds(monitoring.CommandListener):
    """Each `find` a client sends: its collection and its filter."""

    def __init__(self) -> None:
        self.filters: list[Any] = []
        self.by_collection: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find":
            self.filters.append(event.command.get("filter"))
            self.by_collection[event.command["find"]] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@contextlib.asynccontextmanager
async def watched(mongodb_url: str) -> AsyncIterator[tuple[AsyncMongoClient[dict[str, Any]], Finds]]:
    """A client of the server at `mongodb_url` whose finds are recorded, closed afterwards."""
    finds = Finds()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True, event_listeners=[finds])
    try:
        yield client, finds
    finally:
        await client.close()
