import pytest

from gateway.ratelimit.policy import (
    Budget,
    Outcome,
    group_of,
    parse_budget,
    parse_budgets,
    policy_header,
    ratelimit_header,
)

pytestmark = pytest.mark.unit


def test_budgets_parse_the_limits_notation() -> None:
    assert parse_budget("30/minute", name="chat") == Budget("chat", 30, 60)
    assert parse_budget("5 per second") == Budget("budget", 5, 1)
    assert parse_budget("100/2 hours") == Budget("budget", 100, 7200)
    for bad in ("lots", "0/minute", "-1/minute"):
        with pytest.raises(ValueError):
            parse_budget(bad)


def test_budgets_by_group_and_role() -> None:
    budgets = parse_budgets({"chat": {"user": "2/minute", "admin": "9/second"}})
    assert budgets[("chat", "user")] == Budget("chat", 2, 60)
    assert ("chat", "subscriber") not in budgets


@pytest.mark.parametrize(
    ("method", "path", "group"),
    [
        ("POST", "/v1/chat", "chat"),
        ("POST", "/v1/chat/completions", "chat"),
        ("POST", "/v1/embeddings", "chat"),
        ("POST", "/v1/images/generations", "images"),
        ("POST", "/v1/images", "images"),
        ("GET", "/v1/images/abc", None),  # reads and deletes are held by the per-IP budget only
        ("DELETE", "/v1/images/abc", None),
        ("POST", "/v1/chatter", None),
        ("POST", "/v1/credits", None),
    ],
)
def test_groups_by_path(method: str, path: str, group: str | None) -> None:
    assert group_of(method, path) == group


def test_ietf_header_fields() -> None:
    outcomes = [
        Outcome(Budget("ip", 600, 60), True, 598, 59.2),
        Outcome(Budget("chat", 30, 60), False, 0, 12.01),
    ]
    assert policy_header(outcomes) == '"ip";q=600;w=60, "chat";q=30;w=60'
    assert ratelimit_header(outcomes) == '"ip";r=598;t=60, "chat";r=0;t=13'
    assert outcomes[1].retry_after_s == 13
    assert Outcome(Budget("chat", 1, 60), False, 0, 0.0).retry_after_s == 1
