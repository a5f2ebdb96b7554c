"""python -m chaos --duration 120 [--broker-faults] [--seed N]: run a soak, print the table,
write the JSON report; exit status 1 when an invariant fails."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from chaos.report import table
from chaos.soak import Options, soak


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load and faults")
    parser.add_argument("--users", type=int, default=12)
    parser.add_argument("--workers", type=int, default=12, help="concurrent clients")
    parser.add_argument(
        "--broker-faults", action="store_true", help="also restart this machine's RabbitMQ (stop_app/start_app)"
    )
    parser.add_argument(
        "--gap", type=float, nargs=2, default=(2.0, 6.0), metavar=("MIN", "MAX"), help="seconds between faults"
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--results", type=Path, default=Path("chaos-results"))
    parser.add_argument("--json", action="store_true", help="print the whole JSON report, not only the table")
    args = parser.parse_args()
    options = Options(
        duration=args.duration,
        users=args.users,
        workers=args.workers,
        broker_faults=args.broker_faults,
        gap=tuple(args.gap),
        seed=args.seed,
        results=args.results,
    )
    report = asyncio.run(soak(options))
    print(json.dumps(report, indent=2, default=str) if args.json else table(report))
    return 0 if report["holds"] else 1


if __name__ == "__main__":
    sys.exit(main())
