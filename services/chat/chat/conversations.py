"""A threaded chat request's conversation: the thread it continues (its owner's, or 404), the
context sent for it (`context.py`'s rule over the thread's latest turns), and the turn its
answer adds."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from chat.context import ContextWindow
from chat.thread_book import ThreadBook
from chat.thread_documents import TurnDoc
from chat.threads import TurnWrite, title_from
from common.contracts import ChatMessage
from common.errors import ValidationFailed


def turn_id_of(message_id: uuid.UUID) -> uuid.UUID:
    """The id of the turn a request keeps: derived from its message id, so a redelivery finds it."""
    return uuid.uuid5(message_id, "turn")


@dataclass(frozen=True, slots=True)
class Conversation:
    thread_id: str
    owner_id: str
    new: tuple[ChatMessage, ...]  # kept, with the answer, as the turn
    messages: tuple[ChatMessage, ...]  # sent to the provider
    prompt_tokens: int  # their `credit_prices.prompt_tokens_bound`, counted as they were fitted
    title: str | None  # the thread's automatic title, when this is its first turn

    def turn(
        self,
        *,
        turn_id: uuid.UUID,
        answer: str,
        at: datetime,
        provider: str,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        credits: int,
        cost_usd: float,
    ) -> TurnWrite:
        return TurnWrite(
            thread_id=self.thread_id,
            owner_id=self.owner_id,
            turn_id=turn_id,
            at=at,
            messages=(*self.new, ChatMessage(role="assistant", content=answer)),
            model=model,
            provider=provider,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            credits=credits,
            cost_usd=cost_usd,
            title=self.title,
        )


class Conversations:
    def __init__(self, book: ThreadBook, *, max_turns: int) -> None:
        self.book = book
        self._max_turns = max_turns

    async def kept(self, conversation: Conversation, message_id: uuid.UUID, *, look: bool) -> TurnDoc | None:
        """The turn the request `message_id` kept already, when it is a redelivery of one that was;
        `look`: also count turns written since the thread was loaded (a redelivery's first delivery
        may have kept its turn on the replica that died)."""
        return await self.book.kept(conversation.thread_id, turn_id_of(message_id), look=look)

    async def open(
        self, *, thread_id: uuid.UUID, owner_id: str, new: Sequence[ChatMessage], window: int, max_tokens: int
    ) -> Conversation:
        """The conversation a request continues; NotFound for a thread that is not the owner's,
        ValidationFailed for new messages that say nothing or cannot fit the window."""
        thread = await self.book.get(thread_id, owner_id=owner_id)
        said = tuple(m for m in new if m.role != "system")
        if not said:
            raise ValidationFailed(
                "a threaded request needs a new user or assistant message",
                errors=[{"field": "body.messages", "message": "only system messages", "type": "value_error"}],
            )
        # System messages of the request stand in for the thread's system prompt, for this request only.
        system = tuple(m for m in new if m.role == "system")
        if not system and (prompt := thread.get("system")):
            system = (ChatMessage(role="system", content=prompt),)
        window_ = ContextWindow(
            system=system, new=said, window=window, max_tokens=max_tokens, max_turns=self._max_turns
        )
        if not window_.full:
            async for turn in self.book.newest_first(thread):
                if not window_.offer(turn.messages, tokens=turn.tokens) or window_.full:
                    break
        first = thread.get("turns", 0) == 0 and not thread.get("autoTitle")
        return Conversation(
            thread_id=thread["_id"],
            owner_id=owner_id,
            new=said,
            messages=window_.messages,
            prompt_tokens=window_.prompt_tokens,
            title=title_from(said) if first else None,
        )
