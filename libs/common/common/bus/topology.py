"""Names of every exchange and queue, derived from the namespace and the message catalog.

- `<ns>.commands` (topic, bound with exact keys so it routes like a direct exchange; topic so
  that the broker's topic permissions limit which commands each service's user may publish):
  commands, routing key = message name, one durable quorum queue
  per service (`<ns>.<service>`) bound to the commands that service handles.
- Partitioned commands (the credits ledger's account-scoped ones) are routed by the account
  instead: routing key `<name>.<partition>`, into `<ns>.<service>.p<partition>`, a quorum
  queue with a single active consumer, so exactly one replica owns a partition at a time
  and another takes over when it goes. The partition is crc32(user_id) mod `partitions`.
- `<ns>.events` (topic): past-tense facts any internal service may publish or consume.
- `<ns>.dead-letter` (direct): where a service queue sends what cannot be processed, into
  `<ns>.<service>.dead`.
- replies go through the default exchange to one exclusive queue per gateway process.
"""

from __future__ import annotations

import os
import socket
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

from common.contracts.catalog import CATALOG


def partition_of(key: str, partitions: int) -> int:
    """The partition owning `key` (a user id): stable across processes and hosts."""
    return zlib.crc32(key.encode()) % partitions


@dataclass(frozen=True, slots=True)
class Topology:
    namespace: str
    partitions: int = 1

    @classmethod
    def of(cls, settings: Any) -> Topology:
        """The topology a service's settings describe (namespace and ledger partitions)."""
        return cls(settings.bus_namespace, settings.credits_partitions)

    @property
    def commands(self) -> str:
        return f"{self.namespace}.commands"

    @property
    def events(self) -> str:
        return f"{self.namespace}.events"

    @property
    def dead_letter(self) -> str:
        return f"{self.namespace}.dead-letter"

    def queue(self, service: str) -> str:
        return f"{self.namespace}.{service}"

    def partition_queue(self, service: str, partition: int) -> str:
        return f"{self.namespace}.{service}.p{partition}"

    def dead_letter_queue(self, service: str) -> str:
        return f"{self.namespace}.{service}.dead"

    def reply_queue(self, process: str) -> str:
        """A name unique to one process: host, pid and a random suffix."""
        return f"{self.namespace}.replies.{process}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"

    def partition_for(self, payload: Any) -> int:
        """The partition a partitioned command belongs to: its account's, or the one it names."""
        named = getattr(payload, "partition", None)
        return named if isinstance(named, int) else partition_of(payload.user_id, self.partitions)

    def routing_key(self, name: str, payload: Any) -> str:
        """The routing key of a message: its name, plus the owning partition for partitioned commands."""
        spec = CATALOG.get(name)
        if spec is None or not spec.partitioned:
            return name
        return f"{name}.{self.partition_for(payload)}"

    @staticmethod
    def commands_for(service: str) -> list[str]:
        """The service's commands routed by name (to its shared queue)."""
        return sorted(
            s.name for s in CATALOG.values() if s.service == service and s.kind == "command" and not s.partitioned
        )

    @staticmethod
    def partitioned_commands_for(service: str) -> list[str]:
        return sorted(s.name for s in CATALOG.values() if s.service == service and s.partitioned)
