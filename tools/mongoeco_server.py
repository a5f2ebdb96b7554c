"""Run mongoeco as a MongoDB wire-protocol server on this machine (no MongoDB package here).

    python tools/mongoeco_server.py --port 27017 [--sqlite .data/mongo.db]

Prints one JSON line {"uri": ...} once it accepts connections, then serves until SIGTERM/SIGINT.
Memory engine by default; --sqlite keeps data across restarts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from mongoeco.wire import AsyncMongoEcoProxyServer


async def serve(host: str, port: int, sqlite: str | None) -> None:
    engine = None
    if sqlite:
        from mongoeco.engines.sqlite import SQLiteEngine

        engine = SQLiteEngine(sqlite)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncMongoEcoProxyServer(engine=engine, host=host, port=port) as server:
        print(json.dumps({"uri": server.address.uri}), flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=27017)
    parser.add_argument("--sqlite", default=None, help="SQLite file to persist to (default: in memory)")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.host, args.port, args.sqlite))
    except OSError as exc:
        sys.exit(f"mongoeco could not listen on {args.host}:{args.port}: {exc}")


if __name__ == "__main__":
    main()
