"""How many event streams each user holds open on this gateway, bounded (MAX_STREAMS_PER_USER):
each stream holds a Redis subscription and a connection for minutes, so one user opening
thousands would starve everybody else. Counted per gateway process: N gateways admit up to N
times the bound, which still bounds what one user holds on each."""

from __future__ import annotations

from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from common.errors import RateLimited


class StreamSlots:
    def __init__(self, per_user: int) -> None:
        self.per_user = per_user
        self._open: dict[str, int] = {}

    def take(self, user_id: str) -> None:
        """Count one more open stream for `user_id`, or refuse it (429) when the user has the most."""
        held = self._open.get(user_id, 0)
        if held >= self.per_user:
            raise RateLimited(f"you have {held} event streams open; close one first", limit="streams", retry_after=5)
        self._open[user_id] = held + 1

    def give_back(self, user_id: str) -> None:
        held = self._open.get(user_id, 0) - 1
        if held > 0:
            self._open[user_id] = held
        else:
            self._open.pop(user_id, None)

    def held(self, user_id: str) -> int:
        return self._open.get(user_id, 0)


class SlottedStream(StreamingResponse):
    """A streaming response that gives its user's slot back when it ends, however it ends."""

    def __init__(self, content: Any, *, slots: StreamSlots, user_id: str, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._slots, self._user_id = slots, user_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._slots.give_back(self._user_id)
