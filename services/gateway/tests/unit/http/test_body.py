from __future__ import annotations

import pytest
from starlette.types import Message, Receive

from common.errors import PayloadTooLarge
from gateway.http.body import read_body, replaying

pytestmark = pytest.mark.unit


def receiving(*messages: Message) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    return receive


async def test_a_body_in_parts_is_read_whole_and_handed_on_once() -> None:
    receive = receiving(
        {"type": "http.request", "body": b"ab", "more_body": True}, {"type": "http.request", "body": b"c"}
    )
    body, ended = await read_body(receive)
    assert (body, ended) == (b"abc", None)

    replay = replaying(body, ended, receive)
    assert await replay() == {"type": "http.request", "body": b"abc"}
    assert (await replay())["type"] == "http.disconnect"  # then the real receive


async def test_a_body_cut_short_by_a_disconnect_is_not_handed_on_as_whole() -> None:
    receive = receiving({"type": "http.request", "body": b'{"a":', "more_body": True}, {"type": "http.disconnect"})
    body, ended = await read_body(receive)
    assert ended == {"type": "http.disconnect"}

    replay = replaying(body, ended, receive)
    assert (await replay())["type"] == "http.disconnect"


async def test_more_than_max_bytes_is_refused_as_soon_as_it_is_exceeded() -> None:
    receive = receiving(
        {"type": "http.request", "body": b"x" * 6, "more_body": True},
        {"type": "http.request", "body": b"x" * 6, "more_body": True},
        {"type": "http.request", "body": b"never read"},
    )
    with pytest.raises(PayloadTooLarge, match="larger than 10 bytes"):
        await read_body(receive, max_bytes=10)
    assert (await receive())["body"] == b"never read"
