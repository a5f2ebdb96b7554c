"""Credits service entry point. An idle skeleton until its issue lands: it joins the bus and
checks that MongoDB answers, so `make run` shows the whole topology alive."""

from __future__ import annotations

import asyncio

from pymongo import AsyncMongoClient

from common.runtime import run_service
from credits.settings import CreditsSettings


async def serve(settings: CreditsSettings) -> None:
    url = settings.mongodb_url.get_secret_value() if settings.mongodb_url else "mongodb://127.0.0.1:27017/"
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url, serverSelectionTimeoutMS=5000)
    try:
        await mongo.admin.command("ping")
        await run_service(settings, handlers={})
    finally:
        await mongo.close()


def main() -> None:
    asyncio.run(serve(CreditsSettings()))


if __name__ == "__main__":
    main()
