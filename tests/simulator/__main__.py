"""`python -m tests.simulator --port 9100` (from the repo root): serve the simulator until interrupted."""

from __future__ import annotations

import argparse

import uvicorn

from tests.simulator.app import Simulator, create_app
from tests.simulator.server import BaseUrls


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--stream-delay-ms", type=float, default=20.0, help="pause between stream chunks")
    parser.add_argument("--processing-s", type=float, default=0.5, help="Replicate prediction run time")
    parser.add_argument("--cloudinary-cloud", default="sim-cloud")
    parser.add_argument("--cloudinary-key", default="sim-key")
    parser.add_argument("--cloudinary-secret", default="sim-secret")
    args = parser.parse_args(argv)
    sim = Simulator(
        stream_delay_s=args.stream_delay_ms / 1000,
        processing_s=args.processing_s,
        cloudinary_cloud=args.cloudinary_cloud,
        cloudinary_key=args.cloudinary_key,
        cloudinary_secret=args.cloudinary_secret,
    )
    urls = BaseUrls.build(f"http://{args.host}:{args.port}", sim)
    print("provider simulator; point the SDKs here:", flush=True)
    for name, value in urls.env().items():
        print(f"  {name}={value}", flush=True)
    print(f"  control API: {urls.origin}/_sim/  (faults, calls, reset)", flush=True)
    uvicorn.run(create_app(sim), host=args.host, port=args.port, log_level="info", timeout_graceful_shutdown=3)


if __name__ == "__main__":
    main()
