"""A request whose hold an earlier delivery settled: its client's retry was answered (409); a
broker redelivery may have been charged without its answer reaching anyone (504, never a refusal)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from chat.settlement import settled_before
from common.contracts import Balance, Reservation
from common.errors import Conflict, OutcomeUnknown

pytestmark = pytest.mark.unit


def settled(status: str) -> Reservation:
    return Reservation.model_validate(
        {
            "reservation_id": uuid.uuid4(),
            "user_id": "u1",
            "amount": 3,
            "status": status,
            "expires_at": datetime.now(UTC) + timedelta(minutes=5),
            "balance": Balance(user_id="u1", available=16, reserved=0, spent=2, granted=20),
        }
    )


@pytest.mark.parametrize("status", ["committed", "released", "expired"])
def test_a_clients_retry_of_a_settled_request_is_a_409(status: str) -> None:
    error = settled_before(settled(status), redelivered=False)
    assert type(error) is Conflict and error.status == 409
    assert error.extra["status_now"] == status


@pytest.mark.parametrize("status", ["committed", "released", "expired"])
def test_a_broker_redelivery_of_a_settled_request_is_a_504_outcome_unknown(status: str) -> None:
    error = settled_before(settled(status), redelivered=True)
    assert isinstance(error, OutcomeUnknown) and error.status == 504
    assert error.extra["status_now"] == status
