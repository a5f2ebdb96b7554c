"""Every message the platform exchanges: name, payload, reply and which queue consumes it.

The bus topology and the AsyncAPI document are both derived from this table, so a message
added here is routed and documented in one step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from common.contracts.chat import ChatCompletion, CompleteChat
from common.contracts.envelope import Contract


@dataclass(frozen=True, slots=True)
class MessageSpec:
    name: str
    payload: type[Contract]
    service: str
    kind: Literal["command", "event"] = "command"
    reply: type[Contract] | None = None
    summary: str = ""


CATALOG: dict[str, MessageSpec] = {
    spec.name: spec
    for spec in (
        MessageSpec(
            name="CompleteChat",
            payload=CompleteChat,
            reply=ChatCompletion,
            service="chat",
            summary="Answer a conversation; the reply is a ChatCompletion.",
        ),
    )
}
