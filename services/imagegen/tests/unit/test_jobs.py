from datetime import UTC, datetime, timedelta
from itertools import islice

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.errors import InsufficientCredits, UpstreamFailed
from imagegen import jobs

pytestmark = pytest.mark.unit

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_a_job_moves_forward_through_its_stages() -> None:
    for current, new in zip(jobs.FORWARD, jobs.FORWARD[1:], strict=False):
        jobs.check_transition(current, new)
        jobs.check_transition(current, current)  # a resumed job repeats its stage


@pytest.mark.parametrize(("current", "new"), [("charging", "saving"), ("saving", "queued"), ("charging", "generating")])
def test_a_job_never_moves_back_except_to_redo_generation(current: jobs.JobStage, new: jobs.JobStage) -> None:
    with pytest.raises(jobs.InvalidTransition):
        jobs.check_transition(current, new)


@pytest.mark.parametrize("current", ["storing", "saving"])
def test_a_resumed_job_may_redo_generation_from_an_unrecorded_step(current: jobs.JobStage) -> None:
    jobs.check_transition(current, "generating")


@pytest.mark.parametrize("current", ["queued", "generating", "storing", "saving", "charging"])
def test_any_unfinished_stage_may_fail(current: jobs.JobStage) -> None:
    jobs.check_transition(current, "failed")


@pytest.mark.parametrize("current", ["done", "failed"])
@pytest.mark.parametrize("new", ["queued", "generating", "charging", "done", "failed"])
def test_a_finished_job_never_moves_again(current: jobs.JobStage, new: jobs.JobStage) -> None:
    with pytest.raises(jobs.InvalidTransition):
        jobs.check_transition(current, new)


def test_status_follows_the_stage() -> None:
    assert [jobs.status_of(s) for s in (*jobs.FORWARD, "failed")] == [
        "queued",
        "running",
        "running",
        "running",
        "running",
        "succeeded",
        "failed",
    ]


def test_progress_rises_with_stage_and_provider_status_and_a_failure_keeps_its_figure() -> None:
    figures = [
        jobs.progress("queued"),
        jobs.progress("generating"),
        jobs.progress("generating", "starting"),
        jobs.progress("generating", "processing"),
        jobs.progress("generating", "succeeded"),
        jobs.progress("storing"),
        jobs.progress("saving"),
        jobs.progress("charging"),
        jobs.progress("done"),
    ]
    assert figures == sorted(figures) and figures[0] == 0 and figures[-1] == 100
    assert jobs.progress("failed", previous=40) == 40


def facts(**overrides: object) -> jobs.Facts:
    fields: dict[str, object] = {
        "status": "running",
        "deadline": NOW + timedelta(seconds=10),
        "image_saved": False,
        "committed": False,
        "failing": False,
    }
    return jobs.Facts(**(fields | overrides))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "step"),
    [
        ({"status": "succeeded"}, "skip"),
        ({"status": "failed", "failing": True}, "skip"),
        ({}, "generate"),
        ({"status": "queued"}, "generate"),
        ({"deadline": NOW}, "roll_back"),
        ({"failing": True}, "roll_back"),
        ({"image_saved": True}, "charge"),
        ({"image_saved": True, "deadline": NOW - timedelta(seconds=1)}, "charge"),
        ({"image_saved": True, "committed": True}, "finish"),
        ({"image_saved": True, "committed": True, "deadline": NOW - timedelta(hours=1)}, "finish"),
    ],
)
def test_plan_says_what_a_worker_taking_a_job_must_do(overrides: dict[str, object], step: str) -> None:
    assert jobs.plan(facts(**overrides), NOW) == step


@given(
    status=st.sampled_from(["queued", "running", "succeeded", "failed"]),
    past=st.booleans(),
    saved=st.booleans(),
    committed=st.booleans(),
    failing=st.booleans(),
)
def test_plan_never_charges_late_work_nor_undoes_a_charge(
    status: jobs.JobStatus, past: bool, saved: bool, committed: bool, failing: bool
) -> None:
    deadline = NOW - timedelta(seconds=1) if past else NOW + timedelta(seconds=1)
    fact = jobs.Facts(status=status, deadline=deadline, image_saved=saved, committed=committed, failing=failing)
    step = jobs.plan(fact, NOW)
    if status in jobs.TERMINAL:
        assert step == "skip"
    elif committed:
        assert step == "finish"
    else:
        assert step != "finish"
        if past and not saved:
            assert step == "roll_back"  # no new work after the deadline


def test_poll_delays_double_up_to_the_cap() -> None:
    assert list(islice(jobs.poll_delays(0.25, 2.0), 6)) == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert next(jobs.poll_delays(5.0, 1.0)) == 1.0


def test_failure_keeps_a_platform_errors_code_and_hides_anything_else() -> None:
    assert jobs.failure(UpstreamFailed("Replicate said no")).model_dump() == {
        "code": "upstream_failed",
        "detail": "Replicate said no",
        "extra": {},
    }
    assert jobs.failure(InsufficientCredits("x", balance=1)).extra == {"balance": 1}
    hidden = jobs.failure(RuntimeError("password=hunter2 at db.internal:27017"))
    assert hidden.code == "internal" and "hunter2" not in hidden.detail


def test_fingerprint_changes_with_any_field() -> None:
    base = {"prompt": "p", "name": "n", "size": "256x256", "model": "m"}
    assert jobs.fingerprint(**base) == jobs.fingerprint(**dict(base))
    for field in base:
        assert jobs.fingerprint(**base) != jobs.fingerprint(**(base | {field: "other"}))


def test_default_name_is_the_prompts_first_words() -> None:
    assert jobs.default_name("  a   red\nlighthouse ") == "a red lighthouse"
    long = jobs.default_name("word " * 50)
    assert len(long) == 80 and long.endswith("…")
