"""Credits service entry point: the ledger's consumer, its journal flusher and its sweeper."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from functools import partial

from common.bus import Handler
from common.contracts import CreditsChanged, Envelope, JournalEntry
from common.mongo import database, mongo_client
from common.runtime import Runtime, run_service
from credits.cache import BalanceCache
from credits.handlers import CreditsHandlers
from credits.journal import JournalFlusher
from credits.repository import AccountRepository
from credits.settings import CreditsSettings
from credits.sweeper import Sweeper

# The ledger is idempotent by operation id, so the bus's processed-message record is not needed.
DEDUPLICATE = False


async def setup(runtime: Runtime, settings: CreditsSettings) -> dict[str, Handler]:
    client = mongo_client(settings)
    runtime.on_close(client.close)
    repo = AccountRepository(database(client, settings), signup_credits=settings.signup_credits)
    await repo.create_indexes()
    cache = BalanceCache(runtime.redis, namespace=settings.bus_namespace, ttl_s=settings.balance_cache_ttl_s)

    async def announce(entry: JournalEntry, message_id: uuid.UUID) -> None:
        event = Envelope[CreditsChanged](
            message_id=message_id,
            type="CreditsChanged",
            request_id=f"journal:{entry.id}",
            payload=CreditsChanged(entry=entry),
        )
        await runtime.bus.publish(event, event=True)

    flusher = JournalFlusher(repo, announce=announce, interval_s=settings.journal_flush_interval_s)
    handlers = CreditsHandlers(
        repo=repo, cache=cache, reservation_ttl=timedelta(seconds=settings.reservation_ttl_s), on_change=flusher.wake
    )
    sweeper = Sweeper(repo, interval_s=settings.sweep_interval_s, on_change=handlers.changed)
    runtime.spawn(flusher.run(), name="journal-flusher")
    runtime.spawn(sweeper.run(), name="reservation-sweeper")
    return handlers.routes()


def main() -> None:
    settings = CreditsSettings()
    asyncio.run(run_service(settings, partial(setup, settings=settings), deduplicate=DEDUPLICATE))


if __name__ == "__main__":
    main()
