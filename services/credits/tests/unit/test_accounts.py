"""An account's stored document (credits/accounts.py): its typed shape, and the state it reads back as."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from credits.accounts import AccountDoc, account_document, account_state
from credits.book import AccountState, Hold
from credits.ledger import Figures

pytestmark = pytest.mark.unit

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def account() -> AccountState:
    return AccountState(
        user_id="u1",
        email="u1@example.com",
        created_at=NOW,
        updated_at=NOW + timedelta(seconds=5),
        figures=Figures(available=70, reserved=10, spent=20, granted=100),
        holds={"h1": Hold("h1", 10, NOW + timedelta(minutes=5), "chat", NOW)},
        grants={"signup:u1"},
        last_seq=4,
        version=3,
        seq=4,
        stored=True,
    )


def test_a_checkpoint_writes_every_field_of_an_account_document_but_the_earlier_ledgers() -> None:
    doc = account_document(account(), partition=2, seq=4)
    assert set(doc) == (AccountDoc.__required_keys__ | AccountDoc.__optional_keys__) - {"seen"}
    assert doc["_id"] == doc["userId"] == "u1" and doc["partition"] == 2


def test_a_written_account_reads_back_as_the_same_state() -> None:
    assert account_state(account_document(account(), partition=2, seq=4)) == account()


def test_an_account_the_earlier_ledger_wrote_reads_with_its_signup_and_remembered_grants() -> None:
    legacy: AccountDoc = {
        "_id": "u2",
        "credits": 5,
        "reserved": 0,
        "spent": 0,
        "amount": 5,
        "createdAt": NOW,
        "seen": ["grant:promo-1", "reserve:r1"],
    }
    state = account_state(legacy)
    assert state.grants == {"promo-1", "signup:u2"} and state.updated_at == NOW and state.seq == 0
