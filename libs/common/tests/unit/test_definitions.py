"""The broker permissions derived from the catalog: what each service's login may publish."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from common.bus.definitions import USERS, definitions, password_hash, permissions, topic_permissions

pytestmark = pytest.mark.unit


def may_publish(service: str, routing_key: str, *, exchange: str = "aisaas.commands") -> bool:
    (rule,) = [p for p in topic_permissions("aisaas", service) if p["exchange"] == exchange]
    return re.fullmatch(rule["write"], routing_key) is not None


def test_chat_may_hold_credits_but_not_grant_them() -> None:
    assert may_publish("chat", "ReserveCredits.3") and may_publish("chat", "CommitReservation.0")
    assert not may_publish("chat", "GrantCredits.0")
    assert not may_publish("chat", "CompleteChat")  # only the gateway speaks for users
    assert may_publish("gateway", "GrantCredits.0") and may_publish("gateway", "CompleteChat")
    assert not may_publish("gateway", "ReserveCredits.0")


def test_the_gateway_publishes_a_users_thread_commands_to_their_partition_and_chat_binds_them() -> None:
    assert may_publish("gateway", "CompleteChat.3") and may_publish("gateway", "GetThread.0")
    assert not may_publish("gateway", "GetThread")  # always partitioned
    assert not may_publish("imagegen", "CompleteChat.3")
    chat = permissions("aisaas", "chat")
    assert re.fullmatch(chat["configure"], "aisaas.chat.p3")


def test_events_come_only_from_the_service_that_owns_them() -> None:
    assert may_publish("credits", "CreditsChanged", exchange="aisaas.events")
    assert not may_publish("chat", "CreditsChanged", exchange="aisaas.events")


def test_a_service_reads_and_configures_only_its_own_queues_in_its_own_namespace() -> None:
    chat = permissions("aisaas", "chat")
    assert re.fullmatch(chat["read"], "aisaas.chat") and re.fullmatch(chat["read"], "aisaas.replies.chat.h.1.ab")
    for other in ("aisaas.credits.p0", "aisaas.imagegen-jobs", "aisaas.replies.gateway.h.1.ab", "other.chat"):
        assert not re.fullmatch(chat["read"], other) and not re.fullmatch(chat["configure"], other), other
    assert not re.fullmatch(permissions("aisaas", "gateway")["write"], "aisaas.dead-letter")
    assert all(v == "^$" for k, v in permissions("aisaas", "monitor").items())


def test_the_namespace_is_matched_literally() -> None:
    assert not re.fullmatch(permissions("a-b", "chat")["read"], "aXb.chat")


def test_users_are_included_only_with_passwords() -> None:
    assert "users" not in definitions(namespace="aisaas")
    document = definitions(namespace="aisaas", passwords={u: f"pw-{u}" for u in USERS}, users={"chat": "x-chat"})
    assert {u["name"] for u in document["users"]} == {*USERS, "x-chat"} - {"chat"}
    assert {p["user"] for p in document["permissions"]} == {*USERS, "x-chat"} - {"chat"}


def test_password_hash_is_rabbitmqs_salted_sha256() -> None:
    raw = base64.b64decode(password_hash("s3cret", salt=b"\x01\x02\x03\x04"))
    assert raw == b"\x01\x02\x03\x04" + hashlib.sha256(b"\x01\x02\x03\x04s3cret").digest()
