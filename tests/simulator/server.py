"""Run the simulator on a free 127.0.0.1 port in a background thread: `with run_simulator() as running: ...`."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from tests.simulator.app import Simulator, create_app


@dataclass(frozen=True)
class BaseUrls:
    """Where each official SDK must be pointed to reach the simulator at `origin`."""

    origin: str
    openai: str  # OpenAI(base_url=...) / OPENAI_BASE_URL
    gemini: str  # genai.Client(http_options=types.HttpOptions(base_url=...)) / GOOGLE_GEMINI_BASE_URL
    replicate: str  # replicate.Client(base_url=...) / REPLICATE_BASE_URL
    cloudinary: str  # CLOUDINARY_URL (key, secret, cloud and upload_prefix)
    cloudinary_upload_prefix: str  # cloudinary.config(upload_prefix=...)

    @classmethod
    def build(cls, origin: str, sim: Simulator) -> BaseUrls:
        prefix = f"{origin}/cloudinary"
        return cls(
            origin=origin,
            openai=f"{origin}/openai/v1",
            gemini=f"{origin}/gemini",
            replicate=f"{origin}/replicate",
            cloudinary=(
                f"cloudinary://{sim.cloudinary_key}:{sim.cloudinary_secret}@{sim.cloudinary_cloud}"
                f"?upload_prefix={prefix}"
            ),
            cloudinary_upload_prefix=prefix,
        )

    def env(self) -> dict[str, str]:
        """Environment variables that point the SDKs here (keys included, none of them real)."""
        return {
            "OPENAI_BASE_URL": self.openai,
            "OPENAI_API_KEY": "sim-openai-key",
            "GOOGLE_GEMINI_BASE_URL": self.gemini,
            "GEMINI_API_KEY": "sim-gemini-key",
            "REPLICATE_BASE_URL": self.replicate,
            "REPLICATE_API_TOKEN": "sim-replicate-token",
            "CLOUDINARY_URL": self.cloudinary,
        }


@dataclass(frozen=True)
class RunningSimulator:
    url: str
    port: int
    sim: Simulator
    base_urls: BaseUrls


@contextmanager
def run_simulator(
    sim: Simulator | None = None, *, host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 10.0
) -> Iterator[RunningSimulator]:
    """Serve `sim` (a fresh Simulator by default) with uvicorn in a daemon thread until the block ends.

    The listening socket is bound before the thread starts (port 0 = a free port, no race), and the
    block is entered only once uvicorn reports it started and a TCP connection succeeds.
    """
    sim = sim or Simulator()
    sim.stopping = False
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(128)
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        create_app(sim), lifespan="off", log_level="warning", access_log=False, timeout_graceful_shutdown=3
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, name="provider-simulator", daemon=True)
    thread.start()
    try:
        _wait_until_serving(server, thread, host, port, startup_timeout)
        url = f"http://{host}:{port}"
        yield RunningSimulator(url=url, port=port, sim=sim, base_urls=BaseUrls.build(url, sim))
    finally:
        sim.stop()
        server.should_exit = True
        thread.join(timeout=15)
        listener.close()


def _wait_until_serving(server: uvicorn.Server, thread: threading.Thread, host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the provider simulator's server thread stopped during startup")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the provider simulator did not start within {timeout}s")
        time.sleep(0.01)
    with socket.create_connection((host, port), timeout=max(0.1, deadline - time.monotonic())):
        pass
