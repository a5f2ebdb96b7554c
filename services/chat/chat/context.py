"""What a threaded request sends the provider: the trimming rule.

The context is, in this order: the system prompt, as many of the thread's latest turns as
fit, then the request's new messages. It must fit the model's window together with the
answer: tokens are estimated as for the credit reservation (`pricing.prompt_tokens_bound`:
one per UTF-8 byte plus a few per message), and `max_tokens` is kept free for the answer.

- The system prompt and the new messages are always sent; if they alone do not fit, the
  request is refused (422) before anything is held or called.
- Turns are taken newest first and dropped whole (a question never loses its answer): the
  first turn that does not fit ends the context, so the oldest turns are the ones left out,
  and what is sent is always a contiguous run of the latest turns.
- At most `max_turns` turns are sent (CHAT_THREAD_MAX_TURNS), whatever the window, so what a
  request reads stays bounded however long a thread grows."""

from __future__ import annotations

from collections.abc import Sequence

from chat.credit_prices import FRAMING_TOKENS, prompt_tokens_bound, utf8_len
from common.contracts import ChatMessage
from common.errors import ValidationFailed


def message_tokens(message: ChatMessage) -> int:
    return utf8_len(message.content) + FRAMING_TOKENS


class ContextWindow:
    """Collects a thread's turns, newest first, while they fit; `messages` is what is sent."""

    def __init__(
        self,
        *,
        system: Sequence[ChatMessage],
        new: Sequence[ChatMessage],
        window: int,
        max_tokens: int,
        max_turns: int,
    ) -> None:
        self._system = tuple(system)
        self._new = tuple(new)
        self._max_turns = max_turns
        needed = prompt_tokens_bound((*self._system, *self._new))
        self.prompt_tokens = needed  # `prompt_tokens_bound` of `messages`, kept as turns are taken
        self._limit = window - max_tokens  # what the prompt may take
        if self.free < 0:
            raise ValidationFailed(
                f"the system prompt and the new messages need about {needed} tokens; with max_tokens {max_tokens} "
                f"the model's window of {window} leaves {window - max_tokens}",
                errors=[
                    {"field": "body.messages", "message": "too long for the model's window", "type": "value_error"}
                ],
            )
        self._turns: list[tuple[ChatMessage, ...]] = []  # newest first
        self.full = max_turns == 0

    def offer(self, turn: Sequence[ChatMessage], *, tokens: int | None = None) -> bool:
        """Take the next older turn if it fits; False (and full from then on) when it does not.
        `tokens`: its messages' `message_tokens`, when known already."""
        if self.full:
            return False
        cost = sum(message_tokens(m) for m in turn) if tokens is None else tokens
        if cost > self.free:
            self.full = True
            return False
        self.prompt_tokens += cost
        self._turns.append(tuple(turn))
        if len(self._turns) >= self._max_turns:
            self.full = True
        return True

    @property
    def free(self) -> int:
        """Tokens the prompt may still take."""
        return self._limit - self.prompt_tokens

    @property
    def turns(self) -> int:
        return len(self._turns)

    @property
    def messages(self) -> tuple[ChatMessage, ...]:
        history = tuple(m for turn in reversed(self._turns) for m in turn)
        return (*self._system, *history, *self._new)
