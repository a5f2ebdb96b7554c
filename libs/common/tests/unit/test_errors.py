import pytest

from common.errors import ERRORS_BY_CODE, ErrorBody, InsufficientCredits, InternalError, error_from_body

pytestmark = pytest.mark.unit


def test_problem_carries_type_status_and_request_id() -> None:
    problem = InsufficientCredits("need 5 credits", balance=2, price=5).to_problem(
        request_id="req-123", instance="/v1/chat"
    )
    assert problem == {
        "type": "urn:aisaas:problem:insufficient_credits",
        "title": "Insufficient credits",
        "status": 402,
        "detail": "need 5 credits",
        "request_id": "req-123",
        "instance": "/v1/chat",
        "balance": 2,
        "price": 5,
    }


@pytest.mark.parametrize("cls", list(ERRORS_BY_CODE.values()))
def test_every_error_survives_a_reply_round_trip(cls: type) -> None:
    original = cls("detail here", extra_fact=1)
    body = ErrorBody.model_validate_json(original.to_body().model_dump_json())
    again = error_from_body(body)
    assert type(again) is cls and again.detail == "detail here" and again.extra == {"extra_fact": 1}


def test_unknown_error_code_becomes_internal() -> None:
    assert isinstance(error_from_body(ErrorBody(code="from_the_future", detail="?")), InternalError)


def test_codes_and_statuses_are_unique() -> None:
    statuses = [cls.status for cls in ERRORS_BY_CODE.values()]
    assert len(statuses) == len(set(statuses))
