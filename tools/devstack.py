"""Start the whole system natively on this machine: what `make run` runs, and what the
end-to-end tests drive.

    python tools/devstack.py            # mongoeco (unless MONGODB_URL is set) + 4 services

RabbitMQ and Redis are expected at their standard local ports (or AMQP_URL / REDIS_URL);
when either is missing, it says exactly what to start. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("credits", "chat", "imagegen")
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

HOW_TO_START = {
    "RabbitMQ": "rabbitmq-server -detached   (Debian package: rabbitmq-server)",
    "Redis": 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ""   (Debian package: redis-server)',
}


_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> Callable[[], None]:
    """Runs in the child between fork and exec: the kernel sends it SIGTERM when the
    supervisor dies, by any signal (SIGKILL included), so no service outlives `make run`.
    A supervisor that died before this ran is caught by the parent check."""

    def arm() -> None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


class InfrastructureMissing(RuntimeError):
    pass


_handed_out: set[int] = set()
_handing_out = threading.Lock()


def free_port() -> int:
    """A port nothing listens on now, and that this process has not handed out before: a port is
    promised well before its server binds it (a stack picks the gateway's first, then each
    service's metrics port as it starts), and the kernel may offer a released port again, which
    once let a metrics server take a gateway's port and answer its readiness check."""
    with _handing_out:
        while True:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
            if port not in _handed_out:
                _handed_out.add(port)
                return port


def check_reachable(name: str, url: str, default_port: int) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        raise InfrastructureMissing(
            f"{name} is not reachable at {host}:{port} ({exc.strerror or exc}).\nStart it with:  {HOW_TO_START[name]}"
        ) from exc


def mongoeco_argv(*, port: int, sqlite: Path | None = None) -> list[str]:
    """The command line of tools/mongoeco_server.py on `port`: on a SQLite file, else in memory."""
    argv = [sys.executable, str(ROOT / "tools" / "mongoeco_server.py"), "--port", str(port)]
    return [*argv, "--sqlite", str(sqlite)] if sqlite is not None else argv


def mongoeco_uri(proc: Process, *, timeout: float = 60) -> str:
    """The URI that mongoeco_server.py, started as `proc`, prints once it accepts connections."""
    line = proc.wait_for_line(lambda s: s.startswith('{"uri"'), timeout=timeout)
    return str(json.loads(line)["uri"])


class Process:
    """A child process whose output lines are kept (and optionally echoed) for inspection."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], log_file: Path, echo: bool) -> None:
        self.name, self.argv, self.env, self.log_file, self.echo = name, argv, env, log_file, echo
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> Process:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # Ctrl-C in the terminal reaches the supervisor only, which stops the rest in order
            preexec_fn=_die_with_parent(os.getpid()),
        )
        threading.Thread(target=self._pump, args=(self._proc,), daemon=True, name=f"pump-{self.name}").start()
        return self

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        with self.log_file.open("a") as log:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                if self.echo:
                    sys.stdout.write(f"{self.name:>8} | {line}")
                with self._cond:
                    self.lines.append(line.rstrip("\n"))
                    self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def wait_for_line(self, predicate: Callable[[str], bool], *, timeout: float, start: int = 0) -> str:
        """The first output line (from index `start`) satisfying predicate; fails if the process dies."""
        deadline = time.monotonic() + timeout
        with self._cond:
            index = start
            while True:
                while index < len(self.lines):
                    if predicate(self.lines[index]):
                        return self.lines[index]
                    index += 1
                if not self.running and index >= len(self.lines):
                    raise RuntimeError(
                        f"{self.name} exited ({self._proc.returncode if self._proc else '?'}):\n"
                        + "\n".join(self.lines[-30:])
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{self.name}: no matching output line within {timeout}s:\n" + "\n".join(self.lines[-30:])
                    )
                self._cond.wait(min(left, 0.5))

    def json_lines(self) -> list[dict[str, object]]:
        out = []
        with self._cond:
            lines = list(self.lines)
        for line in lines:
            with suppress(ValueError):
                value = json.loads(line)
                if isinstance(value, dict):
                    out.append(value)
        return out

    def stop(self, *, timeout: float = 10.0) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout)

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)


def _event_is(event: str) -> Callable[[str], bool]:
    needle = re.compile(r'"event":\s*"' + re.escape(event) + '"')
    return lambda line: bool(needle.search(line))


class Stack:
    """The system's processes, started in dependency order and stopped in reverse."""

    def __init__(
        self,
        *,
        namespace: str = "aisaas",
        gateway_port: int = 8000,
        data_dir: Path = ROOT / ".data",
        extra_env: dict[str, str] | None = None,
        echo: bool = False,
        mongo_port: int | None = None,
        persist_mongo: bool = False,
        free_metrics_ports: bool = True,
    ) -> None:
        self.namespace = namespace
        self.gateway_port = gateway_port
        self.data_dir = data_dir
        self.echo = echo
        self.mongo_port = mongo_port
        self.persist_mongo = persist_mongo
        self.processes: dict[str, Process] = {}
        self.free_metrics_ports = free_metrics_ports
        self.metrics_ports: dict[str, int] = {}
        self.env = {
            "ENVIRONMENT": "development",  # the services default to production
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "BUS_NAMESPACE": namespace,
            "DEV_ISSUER_KEY_FILE": str(data_dir / "dev-issuer-key.pem"),
            "HOST": "127.0.0.1",
            "PORT": str(gateway_port),
            **(extra_env or {}),
        }

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def check_infrastructure(self) -> None:
        check_reachable("RabbitMQ", self.env.get("AMQP_URL", DEFAULT_AMQP_URL), 5672)
        check_reachable("Redis", self.env.get("REDIS_URL", DEFAULT_REDIS_URL), 6379)

    def start_mongo(self) -> None:
        if self.env.get("MONGODB_URL"):
            return
        sqlite = self.data_dir / "mongo.sqlite" if self.persist_mongo else None
        proc = self._spawn("mongo", mongoeco_argv(port=self.mongo_port or free_port(), sqlite=sqlite))
        self.env["MONGODB_URL"] = mongoeco_uri(proc)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Process:
        log_file = self.data_dir / "logs" / f"{name}.log"
        proc = Process(name, argv, env={**self.env, **(env or {})}, log_file=log_file, echo=self.echo)
        self.processes[name] = proc.start()
        return proc

    def start_service(
        self, name: str, *, timeout: float = 60, module: str | None = None, replica: str | None = None
    ) -> Process:
        """Start (or restart) one service and wait until it says it is ready; `module` runs a
        stand-in in its place (the benchmarks' storage-free ledger); `replica` starts another
        process of the service under that name (`credits-2`)."""
        env = {}
        if self.free_metrics_ports:  # tests: never collide with another stack's or make run's ports
            self.metrics_ports[replica or name] = free_port()
            env["METRICS_PORT"] = str(self.metrics_ports[replica or name])
        if name == "gateway":
            proc = self._spawn(name, [sys.executable, "-m", "gateway"], env=env)
            self.wait_ready(timeout=timeout)
            return proc
        proc = self._spawn(replica or name, [sys.executable, "-m", module or name], env=env)
        proc.wait_for_line(_event_is("service ready"), timeout=timeout)
        return proc

    def wait_ready(self, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            gateway = self.processes["gateway"]
            if not gateway.running:
                raise RuntimeError("gateway exited:\n" + "\n".join(gateway.lines[-30:]))
            with suppress(OSError), urllib.request.urlopen(self.gateway_url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError("gateway not ready:\n" + "\n".join(gateway.lines[-30:]))
            time.sleep(0.1)

    def start(self) -> Stack:
        self.check_infrastructure()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.start_mongo()
            for name in (*SERVICES, "gateway"):
                self.start_service(name)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        extra = [n for n in self.processes if n not in (*SERVICES, "gateway", "mongo")]
        for name in ("gateway", *extra, *reversed(SERVICES), "mongo"):
            if name in self.processes:
                self.processes[name].stop()


@contextmanager
def running(**kwargs: object) -> Iterator[Stack]:
    stack = Stack(**kwargs)  # type: ignore[arg-type]
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def main() -> None:
    stack = Stack(
        namespace=os.environ.get("BUS_NAMESPACE", "aisaas"),
        gateway_port=int(os.environ.get("PORT", "8000")),
        data_dir=Path(os.environ.get("DEVSTACK_DATA_DIR", ROOT / ".data")),
        echo=True,
        mongo_port=int(os.environ.get("MONGO_PORT", "27017")),
        persist_mongo=True,
        free_metrics_ports=False,
    )
    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        stack.start()
    except InfrastructureMissing as exc:
        sys.exit(str(exc))
    print(
        f"\n  AI SaaS is up: {stack.gateway_url}  (docs: {stack.gateway_url}/docs)\n"
        f"  token:  make token EMAIL=a@example.com ROLE=user\n  Ctrl-C stops everything.\n",
        flush=True,
    )
    try:
        while not stopping.wait(0.5):
            dead = [n for n, p in stack.processes.items() if not p.running]
            if dead:
                print(f"  {', '.join(dead)} exited; stopping the rest.", flush=True)
                break
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
