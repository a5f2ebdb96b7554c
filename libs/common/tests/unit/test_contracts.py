from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from common.contracts import CATALOG, ChatMessage, CompleteChat, Envelope

pytestmark = pytest.mark.unit


def _envelope(**overrides: object) -> Envelope[CompleteChat]:
    fields: dict[str, object] = {
        "type": "CompleteChat",
        "request_id": "r1",
        "payload": CompleteChat(messages=[ChatMessage(role="user", content="hi")]),
    }
    fields.update(overrides)
    return Envelope[CompleteChat](**fields)  # type: ignore[arg-type]


def test_envelope_round_trips_through_json() -> None:
    env = _envelope(deadline=datetime.now(UTC) + timedelta(seconds=5))
    assert Envelope[CompleteChat].model_validate_json(env.model_dump_json()) == env


def test_unknown_fields_are_refused_at_every_level() -> None:
    raw = _envelope().model_dump(mode="json")
    for mutate in (
        lambda d: d.update(extra=1),
        lambda d: d["payload"].update(extra=1),
        lambda d: d["payload"]["messages"][0].update(extra=1),
    ):
        bad = _envelope().model_dump(mode="json")
        mutate(bad)
        with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
            Envelope[CompleteChat].model_validate(bad)
    assert raw["schema_version"] == 1


def test_unknown_schema_version_is_refused() -> None:
    raw = _envelope().model_dump(mode="json") | {"schema_version": 2}
    with pytest.raises(ValidationError):
        Envelope[CompleteChat].model_validate(raw)


def test_deadline_must_carry_a_timezone() -> None:
    with pytest.raises(ValidationError):
        _envelope(deadline=datetime(2030, 1, 1))


def test_expiry_is_decided_by_the_deadline() -> None:
    now = datetime.now(UTC)
    assert not _envelope().expired(now)
    assert not _envelope(deadline=now + timedelta(seconds=1)).expired(now)
    assert _envelope(deadline=now - timedelta(milliseconds=1)).expired(now)


def test_malformed_traceparent_is_refused() -> None:
    with pytest.raises(ValidationError):
        _envelope(traceparent="not-a-trace")


def test_catalog_names_match_their_keys() -> None:
    assert all(name == spec.name for name, spec in CATALOG.items())
