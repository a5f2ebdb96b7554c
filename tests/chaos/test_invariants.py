"""The soak's checks are pure: each is shown here to catch what it is there to catch."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from chaos.evidence import Evidence, Settlement
from chaos.faults import Injection
from chaos.invariants import (
    chat_charged_as_reported,
    chat_never_overcharged,
    chat_reservations,
    each_reservation_ends_once,
    grants_applied_once,
    image_jobs_settled,
    no_hold_past_ttl,
    recovery,
)
from chaos.load import Answer

pytestmark = pytest.mark.unit


def chat(status: int | None, credits: int | None = None) -> tuple[Answer, str]:
    message_id = str(uuid.uuid4())
    answer = Answer("chat", "u1", uuid.uuid4().hex, 0.0, 1.0, status=status, credits=credits)
    return answer, message_id


def evidence_for(pairs: list[tuple[Answer, str]], settlements: list[list[Settlement]]) -> Evidence:
    evidence = Evidence(message_ids={a.request_id: [m] for a, m in pairs})
    for (_, message_id), entries in zip(pairs, settlements, strict=True):
        [rid] = chat_reservations([message_id])
        evidence.ledger[rid] = entries
    return evidence


def test_a_chat_answer_charged_once_as_reported_passes_and_a_second_commit_fails() -> None:
    good, twice = chat(200, 3), chat(200, 3)
    evidence = evidence_for(
        [good, twice],
        [
            [Settlement("reserve", 5), Settlement("commit", 3)],
            [Settlement("reserve", 5), Settlement("commit", 3), Settlement("commit", 3)],
        ],
    )

    over = chat_never_overcharged([good[0], twice[0]], evidence)
    ends = each_reservation_ends_once(evidence)

    assert [v.split(":")[0] for v in over.violations] == [f"chat {twice[0].request_id} (status 200)"]
    assert len(ends.violations) == 1 and "'commit': 2" in ends.violations[0]


def test_a_refused_chat_that_was_charged_and_an_answer_left_uncharged_are_both_reported() -> None:
    refused, unpaid = chat(503), chat(200, 1)
    evidence = evidence_for(
        [refused, unpaid],
        [[Settlement("reserve", 5), Settlement("commit", 2)], [Settlement("reserve", 1), Settlement("expire", 0)]],
    )

    assert "refused, yet charged [2]" in chat_never_overcharged([refused[0], unpaid[0]], evidence).violations[0]
    as_reported = chat_charged_as_reported([refused[0], unpaid[0]], evidence)
    assert as_reported.violations == [
        f"chat {unpaid[0].request_id} (status 200): reported 1 credits, the journal charged []"
    ]


@pytest.mark.parametrize(("status", "what"), [(None, "no answer"), (504, "outcome unknown (504)")])
def test_a_chat_whose_outcome_is_unknown_may_be_charged_once_but_not_twice(status: int | None, what: str) -> None:
    once, twice = chat(status), chat(status)
    evidence = evidence_for(
        [once, twice],
        [
            [Settlement("reserve", 5), Settlement("commit", 2)],
            [Settlement("commit", 2), Settlement("commit", 2)],
        ],
    )

    check = chat_never_overcharged([once[0], twice[0]], evidence)
    assert len(check.violations) == 1 and twice[0].request_id in check.violations[0]
    assert check.counts == {what: 2, f"{what}, charged": 2}


def test_image_jobs_stuck_uncharged_fileless_or_orphaned_are_each_reported() -> None:
    answers = [Answer("image", "u1", f"r{i}", 0.0, 1.0, status=202, job_id=f"j{i}") for i in range(4)]
    evidence = Evidence(
        jobs={
            "j0": {"status": "succeeded", "reservation": "r0", "charged": 5, "image": "i0"},
            "j1": {"status": "succeeded", "reservation": "r1", "charged": 5, "image": "i1"},
            "j2": {"status": "generating", "reservation": "r2", "charged": 0, "image": None},
            "j3": {"status": "failed", "reservation": "r3", "charged": 0, "image": None},
        },
        ledger={"r0": [Settlement("commit", 5)], "r1": [], "r3": [Settlement("release", 0)]},
        images={
            "i0": {"job": "j0", "status": "ready", "key": "k0"},
            "i1": {"job": "j1", "status": "ready", "key": "k1"},
        },
        files=["k0", "k1", "stray"],
    )

    violations = image_jobs_settled(answers, evidence).violations

    assert violations == [
        "job j1 succeeded: charged 5, journal []",
        "job j2 still generating after the run settled",
        "stored file stray has no image record",
    ]


def test_a_grant_applied_twice_and_a_hold_past_its_ttl_are_reported() -> None:
    grant = Answer("grant", "u1", "g", 0.0, 1.0, status=200, key="k")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    evidence = Evidence(
        grants={"admin:u1:k": 2},
        open_holds=[
            {"user": "u1", "id": "late", "amount": 3, "expires": now - timedelta(seconds=30)},
            {"user": "u1", "id": "fresh", "amount": 3, "expires": now + timedelta(seconds=5)},
        ],
        now=now,
    )

    assert grants_applied_once([grant], evidence).violations == ["grant k answered 200, journal holds it 2 times"]
    [late] = no_hold_past_ttl(evidence, grace=timedelta(seconds=10)).violations
    assert late.startswith("hold late of u1")


def test_recovery_is_the_time_from_heal_to_the_end_of_the_next_success_of_each_kind() -> None:
    answers = [
        Answer("chat", "u", "a", started=9.0, ended=10.5, status=200, credits=1),  # began before the heal
        Answer("chat", "u", "b", started=10.2, ended=10.4, status=502),
        Answer("chat", "u", "c", started=10.6, ended=11.5, status=200, credits=1),
        Answer("balance", "u", "d", started=10.1, ended=10.3, status=200),
    ]
    [row] = recovery(answers, [Injection("redis", "redis link", injected=5.0, healed=10.0)])

    assert row["lasted_s"] == 5.0
    assert row["recovered_s"]["chat"] == 1.5 and row["recovered_s"]["balance"] == 0.3
    assert row["recovered_s"]["image"] is None
