"""The ledger partitions this replica serves: created on the first message for each, all
forgotten when the consumer's channel goes (another replica may own them now), all
checkpointed at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from common.bus.topology import partition_of
from credits.partition import Partition


class Partitions:
    def __init__(self, count: int, make: Callable[[int], Partition]) -> None:
        self.count = count
        self._make = make
        self._partitions: dict[int, Partition] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def of(self, user_id: str) -> Partition:
        """The partition owning `user_id`'s account."""
        return self.number(partition_of(user_id, self.count))

    def number(self, number: int) -> Partition:
        partition = self._partitions.get(number)
        if partition is None:
            partition = self._partitions[number] = self._make(number)
            self._tasks.append(asyncio.create_task(partition.run(), name=f"ledger-partition-{number}"))
        return partition

    def invalidate(self) -> None:
        for partition in self._partitions.values():
            partition.invalidate()

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self._partitions.values()))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
