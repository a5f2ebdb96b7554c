"""Names of every exchange and queue, derived from the namespace and the message catalog.

- `<ns>.commands` (topic, bound with exact keys so it routes like a direct exchange; topic so
  that the broker's topic permissions limit which commands each service's user may publish):
  commands, routing key = message name, one durable quorum queue
  per service (`<ns>.<service>`) bound to the commands that service handles.
- Partitioned commands (the credits ledger's account-scoped ones, and the chat service's
  thread commands, with the chat requests that continue a thread) are routed by their user
  instead: routing key `<name>.<partition>`, into `<ns>.<service>.p<partition>`, a quorum
  queue with a single active consumer, so exactly one replica owns a partition at a time
  and another takes over when it goes. The partition is crc32(user id) mod `partitions`, the
  user being the payload's `user_id` (an account) or else the envelope's acting user.
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
from common.contracts.envelope import Envelope


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

    def partition_for(self, envelope: Envelope[Any]) -> int:
        """The partition a partitioned command belongs to: the one it names, else its account's
        (`user_id`), else its acting user's."""
        payload = envelope.payload
        named = getattr(payload, "partition", None)
        if isinstance(named, int):
            return named
        user = getattr(payload, "user_id", None)
        if not isinstance(user, str):
            user = envelope.actor.id if envelope.actor is not None else ""
        return partition_of(user, self.partitions)

    def partition_of_message(self, envelope: Envelope[Any]) -> int | None:
        """The partition owning this message, or None for one routed to its service's shared queue."""
        spec = CATALOG.get(envelope.type)
        if spec is None or not spec.partitioned_for(envelope.payload):
            return None
        return self.partition_for(envelope)

    def routing_key(self, envelope: Envelope[Any]) -> str:
        """The routing key of a message: its name, plus the owning partition for partitioned commands."""
        partition = self.partition_of_message(envelope)
        return envelope.type if partition is None else f"{envelope.type}.{partition}"

    @staticmethod
    def commands_for(service: str) -> list[str]:
        """The service's commands routed by name (to its shared queue)."""
        return sorted(s.name for s in CATALOG.values() if s.service == service and s.kind == "command" and s.shared)

    @staticmethod
    def partitioned_commands_for(service: str) -> list[str]:
        return sorted(s.name for s in CATALOG.values() if s.service == service and s.partitioned)
