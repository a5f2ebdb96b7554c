"""The broker's side of bus trust: one RabbitMQ user per service, with least privilege.

    python -m common.bus.definitions --namespace aisaas > definitions.json          permissions only
    python -m common.bus.definitions --namespace aisaas --users-from-env ...        with users

Derived from the topology and the catalog, so a message added there is permitted here:

- vhost permissions (regexes over exchange and queue names): a service may declare the shared
  exchanges, its own queues (and its own reply queues `<ns>.replies.<service>.*`), publish to
  the exchanges it needs and to the default exchange (replies), and read only its own queues;
- topic permissions (regexes over routing keys) on `<ns>.commands` and `<ns>.events`: the
  commands and events the catalog lets it publish, and the keys it may bind its queues with.
  So chat's login can publish `ReserveCredits.<p>` but not `GrantCredits.<p>`.

Replies travel through the default exchange, which routes by queue name, so a service able to
reply could also drop a message straight into another service's queue; the consumer closes that
gap by checking the message's broker-verified `user_id` against the catalog (`common.bus.trust`).

`--users-from-env` adds the users with their password hashes (RabbitMQ's salted SHA-256), the
passwords read from `RABBITMQ_PASSWORD_<SERVICE>` (and an administrator from `RABBITMQ_ADMIN_USER`
/ `RABBITMQ_ADMIN_PASSWORD` when set), for a broker that loads the file at boot (compose).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from common.contracts.catalog import CATALOG, IMAGE_WORKER, MessageSpec

SERVICES = ("chat", "credits", "gateway", "imagegen", "ops")  # the users that publish
MONITOR = "monitor"  # reads queue depths (a passive declare needs no permission), nothing else: KEDA
USERS = (*SERVICES, MONITOR)
# The queues each service's process consumes (and so declares and binds).
QUEUES: dict[str, tuple[str, ...]] = {
    "chat": ("chat",),
    "credits": ("credits",),
    "imagegen": ("imagegen", IMAGE_WORKER),
}
HASHING = "rabbit_password_hashing_sha256"
NOTHING = "^$"


def password_hash(password: str, *, salt: bytes | None = None) -> str:
    """RabbitMQ's `rabbit_password_hashing_sha256`: base64(salt ++ sha256(salt ++ password))."""
    salt = salt if salt is not None else secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def _any_of(patterns: Iterable[str]) -> str:
    alternatives = sorted(set(patterns))
    return f"^({'|'.join(alternatives)})$" if alternatives else NOTHING


def _key(spec: MessageSpec) -> str:
    if not spec.partitioned:
        return spec.name
    return f"{spec.name}(\\.[0-9]+)?" if spec.shared else f"{spec.name}\\.[0-9]+"


def _published(service: str, kind: str) -> list[MessageSpec]:
    return [s for s in CATALOG.values() if s.kind == kind and service in s.publishers]


def _own_queues(ns: str, service: str) -> list[str]:
    names = []
    for queue in QUEUES.get(service, ()):
        partitioned = any(s.partitioned for s in CATALOG.values() if s.service == queue)
        names.append(f"{ns}\\.{re.escape(queue)}(\\.dead{'|\\.p[0-9]+' if partitioned else ''})?")
    return names


def permissions(namespace: str, service: str) -> dict[str, str]:
    """The vhost permission regexes (configure, write, read) of one service's user."""
    if service == MONITOR:
        return {"configure": NOTHING, "write": NOTHING, "read": NOTHING}
    ns = re.escape(namespace)
    exchanges = [f"{ns}\\.commands", f"{ns}\\.events", f"{ns}\\.dead-letter"]
    queues = _own_queues(ns, service)
    replies = f"{ns}\\.replies\\.{re.escape(service)}\\..+"
    publishes = [f"{ns}\\.commands"] if _published(service, "command") else []
    publishes += [f"{ns}\\.events"] if _published(service, "event") else []
    # Binding a queue needs write on the queue and read on the exchange; declaring one with a
    # dead-letter exchange needs write on that exchange.
    binds = [f"{ns}\\.commands", f"{ns}\\.dead-letter"] if queues else []
    dead_letters = [f"{ns}\\.dead-letter"] if queues else []
    return {
        "configure": _any_of([*exchanges, *queues, replies]),
        "write": _any_of([*publishes, *dead_letters, "amq\\.default", *queues]),
        "read": _any_of([*binds, *queues, replies]),
    }


def topic_permissions(namespace: str, service: str) -> list[dict[str, str]]:
    """Which routing keys the user may publish (write) and bind its queues with (read)."""
    consumed = [s for s in CATALOG.values() if s.kind == "command" and s.service in QUEUES.get(service, ())]
    return [
        {
            "exchange": f"{namespace}.commands",
            "write": _any_of(_key(s) for s in _published(service, "command")),
            "read": _any_of(_key(s) for s in consumed),
        },
        {
            "exchange": f"{namespace}.events",
            "write": _any_of(_key(s) for s in _published(service, "event")),
            "read": NOTHING,
        },
    ]


def definitions(
    *,
    namespace: str,
    vhost: str = "/",
    users: Mapping[str, str] | None = None,
    passwords: Mapping[str, str] | None = None,
    admin: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """RabbitMQ definitions (the `import_definitions` / `load_definitions` format).

    `users` maps each service (and `monitor`) to its broker user (default: its own name). With
    `passwords` (service -> password) the users themselves are included, with salted hashes;
    without, only their permissions (for a broker whose users are created otherwise). `admin`
    (name, password) adds a broker administrator for operators, bound to nothing here.
    """
    names = {s: (users or {}).get(s, s) for s in USERS}
    document: dict[str, Any] = {
        "vhosts": [{"name": vhost}],
        "permissions": [{"user": names[s], "vhost": vhost, **permissions(namespace, s)} for s in USERS],
        "topic_permissions": [
            {"user": names[s], "vhost": vhost, **p} for s in SERVICES for p in topic_permissions(namespace, s)
        ],
    }
    if passwords is not None:
        document["users"] = [
            {"name": names[s], "password_hash": password_hash(passwords[s]), "hashing_algorithm": HASHING, "tags": []}
            for s in USERS
        ]
    if admin is not None:
        document.setdefault("users", []).append(
            {
                "name": admin[0],
                "password_hash": password_hash(admin[1]),
                "hashing_algorithm": HASHING,
                "tags": ["administrator"],
            }
        )
        document["permissions"].append(
            {"user": admin[0], "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}
        )
    return document


def _passwords_from_env() -> dict[str, str]:
    missing = [
        f"RABBITMQ_PASSWORD_{s.upper()}" for s in SERVICES if not os.environ.get(f"RABBITMQ_PASSWORD_{s.upper()}")
    ]
    if missing:
        raise SystemExit(f"set {', '.join(missing)}")
    return {s: os.environ[f"RABBITMQ_PASSWORD_{s.upper()}"] for s in USERS}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namespace", default=os.environ.get("BUS_NAMESPACE", "aisaas"))
    parser.add_argument("--vhost", default="/")
    parser.add_argument("--users-from-env", action="store_true", help="include the users, passwords from env")
    parser.add_argument("--out", help="write here instead of stdout")
    parser.add_argument("--mode", default="600", help="file mode of --out, octal (the broker's user must read it)")
    args = parser.parse_args(argv)
    passwords = _passwords_from_env() if args.users_from_env else None
    admin_user, admin_password = os.environ.get("RABBITMQ_ADMIN_USER"), os.environ.get("RABBITMQ_ADMIN_PASSWORD")
    admin = (admin_user, admin_password) if args.users_from_env and admin_user and admin_password else None
    text = json.dumps(
        definitions(namespace=args.namespace, vhost=args.vhost, passwords=passwords, admin=admin), indent=2
    )
    if args.out is None:
        sys.stdout.write(text + "\n")
        return
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text + "\n")
    os.chmod(args.out, int(args.mode, 8))


if __name__ == "__main__":
    main()
