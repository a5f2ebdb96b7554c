"""The documents of `threads`, `thread_turns` and `thread_log` as stored, field by field.

`ThreadStore` and `ThreadLog` are their only writers, so they read them as these types; the
conversation and thread handlers see typed fields, never a bare dict.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NotRequired, TypedDict, cast

import bson
from bson.codec_options import CodecOptions

from common.contracts.chat import ChatRole


class ThreadDoc(TypedDict):
    _id: str  # the thread id
    ownerId: str
    title: str | None  # the owner's title
    autoTitle: str | None  # made from the first turn, shown while there is no title
    system: str | None
    last: int  # the number of the newest turn counted here (-1: none yet); later turns are counted on load
    turns: int
    messages: int
    promptTokens: int
    completionTokens: int
    credits: int
    costUsd: float
    createdAt: datetime
    updatedAt: datetime


class MessageDoc(TypedDict):
    role: ChatRole
    content: str


class TurnDoc(TypedDict):
    _id: str  # turn_key(threadId, seq)
    threadId: str
    ownerId: str
    seq: int
    turnId: str
    at: datetime
    messages: list[MessageDoc]
    model: str
    provider: str
    promptTokens: int
    completionTokens: int
    credits: int
    costUsd: NotRequired[float]  # absent on turns written before threads were checkpointed
    title: NotRequired[str]  # the thread's automatic title, on the turn that set it


class SegmentDoc(TypedDict):
    """A run of a thread's turns in `thread_turns`, written by a checkpoint; a document written
    before segments (one turn, its fields at the top level) reads as a segment of one."""

    _id: str  # turn_key(threadId, last): a run is found from its newest turn
    threadId: str
    first: int
    last: int
    turns: bytes  # `encode_turns`d


class PageDoc(TypedDict):
    """A page of `thread_log`: the turns one flush kept in one partition of the users."""

    _id: str  # page_id(partition, seq)
    partition: int
    seq: int
    at: datetime
    count: int
    turns: bytes  # `encode_turns`d


_CODEC: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True)


def encode_turns(turns: Sequence[TurnDoc]) -> bytes:
    """Turns as one BSON value: the store keeps them as one opaque field, which costs it a
    fraction of the same turns as nested documents (it never queries inside them)."""
    return bson.encode({"t": list(turns)})


def decode_turns(data: bytes) -> list[TurnDoc]:
    return cast("list[TurnDoc]", bson.decode(data, codec_options=_CODEC)["t"])
