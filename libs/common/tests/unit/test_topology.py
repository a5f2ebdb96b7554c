"""Where each command goes (common/bus/topology.py): by name to its service's shared queue, or
to the partition queue owning its user, for the ledger's accounts and a user's threads."""

from __future__ import annotations

import uuid

import pytest

from common.bus.topology import Topology, partition_of
from common.contracts import Actor, ChatMessage, CompleteChat, Envelope, GetThread, ListModels, ReserveCredits

pytestmark = pytest.mark.unit

TOPOLOGY = Topology("aisaas", partitions=8)
USER = "user_2abc"


def envelope(type_: str, payload: object, *, actor: str | None = USER) -> Envelope[object]:
    return Envelope[object](
        type=type_,
        request_id="r",
        payload=payload,
        actor=Actor(id=actor, email="a@example.com", role="user") if actor is not None else None,
    )


def test_a_chat_request_goes_to_the_shared_queue_unless_it_continues_a_thread() -> None:
    said = [ChatMessage(role="user", content="hi")]
    plain = envelope("CompleteChat", CompleteChat(messages=said))
    threaded = envelope("CompleteChat", CompleteChat(messages=said, thread_id=uuid.uuid4()))
    assert TOPOLOGY.routing_key(plain) == "CompleteChat" and TOPOLOGY.partition_of_message(plain) is None
    owner = partition_of(USER, 8)
    assert TOPOLOGY.routing_key(threaded) == f"CompleteChat.{owner}"
    assert "CompleteChat" in Topology.commands_for("chat") and "CompleteChat" in Topology.partitioned_commands_for(
        "chat"
    )


def test_thread_commands_go_to_their_acting_users_partition_and_account_commands_to_the_accounts() -> None:
    get = envelope("GetThread", GetThread(thread_id=uuid.uuid4()))
    assert TOPOLOGY.routing_key(get) == f"GetThread.{partition_of(USER, 8)}"
    assert "GetThread" not in Topology.commands_for("chat")
    hold = envelope(
        "ReserveCredits",
        ReserveCredits(user_id="someone-else", amount=1, reservation_id=uuid.uuid4(), purpose="chat"),
        actor=USER,
    )
    assert TOPOLOGY.routing_key(hold) == f"ReserveCredits.{partition_of('someone-else', 8)}"
    assert TOPOLOGY.routing_key(envelope("ListModels", ListModels())) == "ListModels"
