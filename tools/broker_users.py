"""Give each service its own user on the local RabbitMQ (`make broker-users`).

Each service (and `ops`, for tools) gets a broker user of its own name with the permissions
`common.bus.definitions` derives from the catalog, imported with `rabbitmqctl import_definitions`
(so it needs rabbitmqctl and the node's Erlang cookie: run it as the user that runs RabbitMQ,
or root). Passwords are made once and kept in `.data/broker-users.json` (mode 0600); the
matching AMQP URLs are written to `.data/broker-users.env`. Running it again changes nothing
but re-applies the same users and permissions; `guest` and every other user stay as they are.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from common.bus.definitions import USERS, definitions

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".data"


@functools.cache
def rabbitmqctl_usable() -> bool:
    if shutil.which("rabbitmqctl") is None:
        return False
    done = subprocess.run(["rabbitmqctl", "-q", "status"], capture_output=True, timeout=60, check=False)
    return done.returncode == 0


def apply(document: Mapping[str, Any]) -> None:
    """Import definitions into the local node (an upsert: nothing it does not name is touched)."""
    # On stdin: a file would have to be readable by the node's own user, passwords and all.
    done = subprocess.run(
        ["rabbitmqctl", "import_definitions", "--format", "json"],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl import_definitions failed: {done.stderr.strip() or done.stdout.strip()}")


def delete_users(names: list[str]) -> None:
    running = [
        subprocess.Popen(
            ["rabbitmqctl", "-q", "delete_user", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for name in names
    ]
    for process in running:
        process.wait(timeout=60)


def _passwords(path: Path) -> dict[str, str]:
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if all(s in known for s in USERS):
        return known
    known = {s: known.get(s) or secrets.token_hex(24) for s in USERS}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(known, out, indent=2)
    return known


def main() -> int:
    namespace = os.environ.get("BUS_NAMESPACE", "aisaas")
    host = os.environ.get("RABBITMQ_HOST", "127.0.0.1:5672")
    if not rabbitmqctl_usable():
        print("rabbitmqctl cannot reach the local RabbitMQ node (run as root or the rabbitmq user)", file=sys.stderr)
        return 1
    passwords = _passwords(DATA / "broker-users.json")
    apply(definitions(namespace=namespace, passwords=passwords))
    env = DATA / "broker-users.env"
    fd = os.open(env, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        for service in USERS:
            out.write(f"AMQP_URL_{service.upper()}=amqp://{service}:{quote(passwords[service], safe='')}@{host}/\n")
    print(f"broker users {', '.join(USERS)} applied for namespace {namespace!r}; their AMQP URLs: {env}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
