"""Message contracts: the envelope, replies and every command and event payload."""

from common.contracts.catalog import CATALOG, MessageSpec
from common.contracts.chat import ChatCompletion, ChatMessage, CompleteChat, Usage
from common.contracts.envelope import SCHEMA_VERSION, Actor, Contract, Envelope, Reply, Role

__all__ = [
    "Actor",
    "CATALOG",
    "ChatCompletion",
    "ChatMessage",
    "CompleteChat",
    "Contract",
    "Envelope",
    "MessageSpec",
    "Reply",
    "Role",
    "SCHEMA_VERSION",
    "Usage",
]
