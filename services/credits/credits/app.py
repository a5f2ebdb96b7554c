"""Credits service entry point: the ledger's partitions, consumed from their queues."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial

from common.bus import Bus, Handler
from common.contracts import CreditsChanged, Envelope, LedgerTick
from common.mongo import database, mongo_client
from common.pages import page_id
from common.runtime import Runtime, serve
from credits.accounts import AccountStore
from credits.handlers import CreditsHandlers
from credits.log import LedgerLog, Page
from credits.partition import Partition
from credits.partitions import Partitions
from credits.settings import CreditsSettings

log = logging.getLogger(__name__)

# The ledger is idempotent by operation id, so the bus's processed-message record is not needed.
DEDUPLICATE = False
PAGE_NAMESPACE = uuid.UUID("6f1b8c1e-5d0a-4c64-9a55-0f4b1c2d3e4f")


async def check_partitions(store: AccountStore, partitions: int) -> None:
    """A ledger keeps the partition count it was created with: an account's journal lives in
    one partition's log, so counting differently would split it."""
    stored = await store.partitions()
    if stored is None:
        await store.set_partitions(partitions)
    elif stored != partitions:
        raise SystemExit(
            f"CREDITS_PARTITIONS is {partitions} but this ledger was written with {stored}; "
            "set it back (every service must agree on it)"
        )


async def tick(bus: Bus, *, partitions: int, interval_s: float) -> None:
    """Wake every partition's owner (whichever replica RabbitMQ made its active consumer) each
    interval, so it loads its partition and expires abandoned reservations without traffic."""
    while True:
        for number in range(partitions):
            envelope = Envelope[LedgerTick](
                type="LedgerTick",
                request_id="ledger-tick",
                deadline=datetime.now(UTC) + timedelta(seconds=interval_s),
                payload=LedgerTick(partition=number),
            )
            try:
                await bus.publish(envelope)
            except Exception as exc:
                log.debug("ledger tick not sent", extra={"error": repr(exc)})
        await asyncio.sleep(interval_s)


async def setup(runtime: Runtime, settings: CreditsSettings) -> dict[str, Handler]:
    client = mongo_client(settings)
    runtime.on_close(client.close)
    db = database(client, settings)
    log, store = LedgerLog(db), AccountStore(db)
    await log.create_indexes()
    await store.create_indexes()
    await check_partitions(store, settings.credits_partitions)

    async def announce(pages: list[Page]) -> None:
        first, last = page_id(pages[0].partition, pages[0].seq), page_id(pages[-1].partition, pages[-1].seq)
        event = Envelope[CreditsChanged](
            message_id=uuid.uuid5(PAGE_NAMESPACE, f"{first}..{last}"),
            type="CreditsChanged",
            request_id=f"journal:{first}",
            payload=CreditsChanged(entries=[e.journal_entry() for page in pages for e in page.entries]),
        )
        await runtime.bus.publish(event, event=True)

    ledger = Partitions(
        settings.credits_partitions,
        lambda number: Partition(
            number,
            log_=log,
            store=store,
            signup_credits=settings.signup_credits,
            window=timedelta(seconds=settings.replay_window_s),
            announce=announce,
            checkpoint_interval_s=settings.checkpoint_interval_s,
            sweep_interval_s=settings.sweep_interval_s,
            max_batch=settings.ledger_max_batch,
            linger_s=settings.ledger_linger_ms / 1000,
        ),
    )
    runtime.on_channel_lost(ledger.invalidate)
    runtime.on_close(ledger.close)
    handlers = CreditsHandlers(
        ledger=ledger, log=log, store=store, reservation_ttl=timedelta(seconds=settings.reservation_ttl_s)
    )
    runtime.spawn(
        tick(runtime.bus, partitions=settings.credits_partitions, interval_s=settings.sweep_interval_s),
        name="ledger-tick",
    )
    return handlers.routes()


def main() -> None:
    settings = CreditsSettings()
    serve(settings, partial(setup, settings=settings), deduplicate=DEDUPLICATE)


if __name__ == "__main__":
    main()
