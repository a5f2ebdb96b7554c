"""Whom a consumer believes: the publisher RabbitMQ vouches for, never the envelope's say-so.

Every message the bus publishes carries the AMQP `user_id` property, and RabbitMQ refuses a
`user_id` that is not the publishing connection's own login, so on arrival it names the broker
user that really sent the message. `Publishers` maps broker users to services (BUS_PUBLISHERS)
and `verify` applies the catalog's rule of who may publish what:

- a message without a `user_id`, or from a broker user no service stands for, is refused;
- a service may publish only the messages the catalog lists it for (chat may reserve, commit
  and release credits, never grant them);
- an envelope's `actor` is the user the message acts for. Only the gateway (which verified the
  user's token) and the operators' `ops` user may act as an admin; from any other publisher an
  admin claim is believed only as far as a plain user's (the role becomes `user`).

In development the local broker's one login, `guest`, stands for every service (that is how
`make run` and the tests run on a broker with no other users); outside development `guest` is
refused like any unknown login. `make broker-users` gives each service a user of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from common.contracts.catalog import CATALOG
from common.contracts.envelope import Envelope
from common.errors import Forbidden

ANY = "*"  # the development `guest`: every service at once
GUEST = "guest"
ADMIN_CAPABLE = frozenset({"gateway", "ops", ANY})
DEFAULT_PUBLISHERS: dict[str, str] = {s: s for s in ("chat", "credits", "gateway", "imagegen", "ops")}


@dataclass(frozen=True, slots=True)
class Publishers:
    """Which service each broker user stands for."""

    users: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PUBLISHERS))
    development: bool = False

    @classmethod
    def of(cls, settings: Any) -> Publishers:
        return cls(settings.bus_publishers, development=settings.environment == "development")

    def service_of(self, user_id: str | None) -> str | None:
        """The service a verified broker user stands for; None for one nobody vouches for."""
        if user_id is None:
            return None
        if user_id in self.users:
            return self.users[user_id]
        return ANY if self.development and user_id == GUEST else None

    def verify[E: Envelope[Any]](self, envelope: E, user_id: str | None) -> E:
        """The envelope as its verified publisher may send it; Forbidden if it may not at all."""
        publisher = self.service_of(user_id)
        if publisher is None:
            raise Forbidden(f"message from an unverified publisher ({user_id or 'no user_id'})")
        allowed = CATALOG[envelope.type].publishers
        if publisher != ANY and publisher not in allowed:
            raise Forbidden(f"{publisher} may not publish {envelope.type}")
        actor = envelope.actor
        if actor is not None and actor.role == "admin" and publisher not in ADMIN_CAPABLE:
            return envelope.model_copy(update={"actor": actor.model_copy(update={"role": "user"})})
        return envelope
