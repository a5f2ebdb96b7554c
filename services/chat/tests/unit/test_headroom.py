from __future__ import annotations

import uuid

import pytest

from chat.headroom import Headroom
from common.contracts import Balance

pytestmark = pytest.mark.unit


def covers(room: Headroom, user: str, amount: int) -> bool:
    return room.covers(user, amount, message_id=uuid.uuid4())


def left(user: str, available: int) -> Balance:
    return Balance(user_id=user, available=available, reserved=5, spent=0, granted=available + 5)


def test_an_unknown_user_is_not_covered_until_a_reservation_shows_what_is_left() -> None:
    room = Headroom()
    assert not covers(room, "u1", 0)
    room.saw(left("u1", 10))
    assert covers(room, "u1", 10) and not covers(room, "u1", 11) and not covers(room, "u2", 1)


def test_a_refused_hold_forgets_the_user() -> None:
    room = Headroom()
    room.saw(left("u1", 10))
    room.refused("u1")
    assert not covers(room, "u1", 1)


def test_memory_is_bounded_and_starts_again_when_full() -> None:
    room = Headroom(max_users=2)
    room.saw(left("u1", 10))
    room.saw(left("u2", 10))
    room.saw(left("u2", 9))  # a known user: nothing forgotten
    assert covers(room, "u1", 10)
    room.saw(left("u3", 10))
    assert not covers(room, "u1", 1) and covers(room, "u3", 10)


def test_a_message_seen_before_waits_for_its_hold() -> None:
    room = Headroom(max_messages=2)
    room.saw(left("u1", 10))
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert room.covers("u1", 1, message_id=first)
    assert not room.covers("u1", 1, message_id=first)  # redelivered
    assert room.covers("u1", 1, message_id=second) and room.covers("u1", 1, message_id=third)
    assert room.covers("u1", 1, message_id=first)  # forgotten: only the newest are kept
