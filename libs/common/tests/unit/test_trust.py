"""Whom a consumer believes: the broker-verified publisher, through the catalog's rules."""

from __future__ import annotations

import uuid

import pytest

from common.bus import Publishers
from common.contracts import Actor, Envelope, GrantCredits, ReserveCredits
from common.contracts.catalog import CATALOG
from common.errors import Forbidden

pytestmark = pytest.mark.unit

ADMIN = Actor(id="user_admin", email="admin@example.com", role="admin")


def reserve(actor: Actor | None = ADMIN) -> Envelope[ReserveCredits]:
    payload = ReserveCredits(
        user_id="user_victim", email="v@example.com", reservation_id=uuid.uuid4(), amount=1, purpose="chat"
    )
    return Envelope[ReserveCredits](type="ReserveCredits", request_id="req-1", actor=actor, payload=payload)


def grant(actor: Actor | None = None) -> Envelope[GrantCredits]:
    payload = GrantCredits(user_id="user_x", email="x@example.com", amount=1000, idempotency_key="k-1", reason="admin")
    return Envelope[GrantCredits](type="GrantCredits", request_id="req-2", actor=actor, payload=payload)


def test_every_message_names_who_may_publish_it() -> None:
    assert all(spec.publishers for spec in CATALOG.values()), [n for n, s in CATALOG.items() if not s.publishers]


@pytest.mark.parametrize("user_id", [None, "", "mallory", "guest"])
def test_a_publisher_nobody_vouches_for_is_refused(user_id: str | None) -> None:
    with pytest.raises(Forbidden):
        Publishers().verify(grant(), user_id)


def test_chat_may_hold_credits_but_never_grant_them() -> None:
    publishers = Publishers()
    assert publishers.verify(reserve(actor=None), "chat").payload.amount == 1
    with pytest.raises(Forbidden, match="chat may not publish GrantCredits"):
        publishers.verify(grant(), "chat")
    with pytest.raises(Forbidden):
        publishers.verify(grant(actor=ADMIN), "chat")  # an admin claim does not make it a grant it may send


def test_only_the_gateway_and_ops_grant() -> None:
    publishers = Publishers()
    assert publishers.verify(grant(actor=ADMIN), "gateway").actor == ADMIN
    assert publishers.verify(grant(), "ops").actor is None


def test_an_admin_claim_counts_only_from_a_publisher_that_can_make_it() -> None:
    publishers = Publishers()
    relayed = publishers.verify(reserve(), "chat")
    assert relayed.actor is not None and (relayed.actor.id, relayed.actor.role) == ("user_admin", "user")
    assert publishers.verify(reserve(), "imagegen").actor.role == "user"  # type: ignore[union-attr]


def test_broker_users_map_to_services() -> None:
    publishers = Publishers({"aisaas-chat": "chat"})
    with pytest.raises(Forbidden):
        publishers.verify(grant(), "chat")  # a user of that name, but not the one mapped
    assert publishers.verify(reserve(actor=None), "aisaas-chat").actor is None


def test_development_guest_stands_for_every_service_but_only_in_development() -> None:
    assert Publishers(development=True).verify(grant(actor=ADMIN), "guest").actor == ADMIN
    with pytest.raises(Forbidden):
        Publishers(development=False).verify(grant(actor=ADMIN), "guest")
