"""Names of every exchange and queue, derived from the namespace and the message catalog.

- `<ns>.commands` (direct): commands, routing key = message name, one durable quorum queue
  per service (`<ns>.<service>`) bound to the commands that service handles.
- `<ns>.events` (topic): past-tense facts any internal service may publish or consume.
- `<ns>.dead-letter` (direct): where a service queue sends what cannot be processed, into
  `<ns>.<service>.dead`.
- replies go through the default exchange to one exclusive queue per gateway process.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

from common.contracts.catalog import CATALOG


@dataclass(frozen=True, slots=True)
class Topology:
    namespace: str

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

    def dead_letter_queue(self, service: str) -> str:
        return f"{self.namespace}.{service}.dead"

    def reply_queue(self, process: str) -> str:
        """A name unique to one process: host, pid and a random suffix."""
        return f"{self.namespace}.replies.{process}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"

    @staticmethod
    def commands_for(service: str) -> list[str]:
        return sorted(s.name for s in CATALOG.values() if s.service == service and s.kind == "command")
