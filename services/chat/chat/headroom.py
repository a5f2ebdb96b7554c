"""What this chat replica last learnt of each user's available credits, to decide whether a
request's provider call may start while its hold is still being written (see
`ChatHandlers._fresh`).

The hold stays the commit point: an answer is released only once its hold is durable, so
starting the call early changes what a user can spend by nothing. What it can cost is a provider
call for a request the ledger then refuses; so a call starts early only when the last reservation
seen for that user left at least this request's hold available. A first request, and every
request after a refused or unanswered hold, waits for its hold as before, and so does a message this
replica has handled already (a redelivery whose hold may be settled: its answer would be thrown
away). Nothing here is authoritative; it only steers when the provider call starts."""

from __future__ import annotations

import uuid
from collections import OrderedDict

from common.contracts import Balance

# Users remembered per replica; past it the memory starts again (everyone waits for one hold).
MAX_USERS = 100_000
# Message ids remembered per replica, newest kept.
MAX_MESSAGES = 10_000


class Headroom:
    def __init__(self, *, max_users: int = MAX_USERS, max_messages: int = MAX_MESSAGES) -> None:
        self._available: dict[str, int] = {}
        self._max_users = max_users
        self._handled: OrderedDict[uuid.UUID, None] = OrderedDict()
        self._max_messages = max_messages

    def covers(self, user_id: str, amount: int, *, message_id: uuid.UUID) -> bool:
        """Whether the call for this message may start early: the user had `amount` available when
        last seen, and the message is new to this replica (it is remembered from now on)."""
        if message_id in self._handled:
            return False
        self._handled[message_id] = None
        if len(self._handled) > self._max_messages:
            self._handled.popitem(last=False)
        return self._available.get(user_id, -1) >= amount

    def saw(self, balance: Balance) -> None:
        """A reservation's reply: what it left available (a lower bound until its settlement)."""
        if len(self._available) >= self._max_users and balance.user_id not in self._available:
            self._available.clear()
        self._available[balance.user_id] = balance.available

    def refused(self, user_id: str) -> None:
        """A hold for the user was refused (or not answered): their next requests wait for theirs."""
        self._available.pop(user_id, None)
