"""The trimming rule of a threaded request's context (chat/context.py)."""

from __future__ import annotations

import pytest

from chat.context import ContextWindow, message_tokens
from chat.credit_prices import prompt_tokens_bound
from common.contracts import ChatMessage
from common.errors import ValidationFailed

pytestmark = pytest.mark.unit

SYSTEM = (ChatMessage(role="system", content="You are terse."),)
NEW = (ChatMessage(role="user", content="and now?"),)


def turn(n: int) -> tuple[ChatMessage, ...]:
    return (ChatMessage(role="user", content=f"question {n}"), ChatMessage(role="assistant", content=f"answer {n}"))


def cost(t: tuple[ChatMessage, ...]) -> int:
    return sum(message_tokens(m) for m in t)


def fill(window: ContextWindow, newest_first: list[tuple[ChatMessage, ...]]) -> None:
    for t in newest_first:
        if not window.offer(t):
            break


def test_the_latest_turns_that_fit_are_sent_oldest_first_between_the_system_prompt_and_the_new_messages() -> None:
    base = prompt_tokens_bound(SYSTEM + NEW)
    room = 3 * cost(turn(0)) + cost(turn(0)) // 2  # three turns and a half
    window = ContextWindow(system=SYSTEM, new=NEW, window=base + room + 100, max_tokens=100, max_turns=50)
    fill(window, [turn(n) for n in range(9, -1, -1)])
    assert window.turns == 3
    assert window.messages == (*SYSTEM, *turn(7), *turn(8), *turn(9), *NEW)
    assert prompt_tokens_bound(window.messages) + 100 <= base + room + 100  # what is sent fits with the answer
    assert window.prompt_tokens == prompt_tokens_bound(window.messages)  # counted as fitted: the hold's count


def test_a_turn_that_does_not_fit_ends_the_context_even_if_an_older_one_would() -> None:
    base = prompt_tokens_bound(SYSTEM + NEW)
    big = (ChatMessage(role="user", content="x" * 500), ChatMessage(role="assistant", content="ok"))
    window = ContextWindow(system=SYSTEM, new=NEW, window=base + 200 + 10, max_tokens=10, max_turns=50)
    fill(window, [turn(2), big, turn(0)])
    assert window.messages == (*SYSTEM, *turn(2), *NEW)  # turn 0 would fit, but the run stops at the gap
    assert window.prompt_tokens == prompt_tokens_bound(window.messages)  # the turn refused is not counted
    assert not window.offer(turn(0))


def test_at_most_max_turns_are_sent() -> None:
    window = ContextWindow(system=(), new=NEW, window=1_000_000, max_tokens=10, max_turns=2)
    fill(window, [turn(n) for n in range(5, -1, -1)])
    assert window.messages == (*turn(4), *turn(5), *NEW)
    assert ContextWindow(system=(), new=NEW, window=1_000_000, max_tokens=10, max_turns=0).full


def test_the_system_prompt_and_new_messages_that_cannot_fit_are_refused() -> None:
    needed = prompt_tokens_bound(SYSTEM + NEW)
    ContextWindow(system=SYSTEM, new=NEW, window=needed + 10, max_tokens=10, max_turns=5)  # exactly fits
    with pytest.raises(ValidationFailed) as refused:
        ContextWindow(system=SYSTEM, new=NEW, window=needed + 9, max_tokens=10, max_turns=5)
    assert refused.value.extra["errors"][0]["field"] == "body.messages"
