"""The documents of `threads` and `thread_turns` as stored, field by field.

`ThreadStore` is the only writer of both collections, so it reads them as these types; the
conversation and thread handlers see typed fields, never a bare dict.
"""

from __future__ import annotations

from datetime import datetime
from typing import NotRequired, TypedDict

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
