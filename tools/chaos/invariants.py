"""The checks a soak must pass, each a pure function over what the load recorded, what the
injector did and what the stores held afterwards (`Evidence`). Each returns a `Check`: its
name, what it counted, and its violations (empty when it holds), precise enough to act on.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chaos.evidence import Evidence, Settlement
from chaos.faults import Injection
from chaos.load import KINDS, Answer

CHAT = ("chat", "chat_cached", "chat_stream")
TERMINAL = ("commit", "release", "expire")


@dataclass
class Check:
    name: str
    counts: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        return {"holds": self.holds, "counts": self.counts, "violations": self.violations[:50]}


def chat_reservations(message_ids: Iterable[str]) -> list[str]:
    """The chat service's reservation ids for a request's CompleteChat message ids."""
    return [str(uuid.uuid5(uuid.UUID(m), "chat")) for m in message_ids]


def _charges(entries: Sequence[Settlement]) -> list[int]:
    return [e.amount for e in entries if e.kind == "commit" and e.amount > 0]


def no_drift(evidence: Evidence) -> Check:
    check = Check("reconcile: zero drift", {"accounts": int(evidence.reconcile.get("accounts", 0))})
    drift = evidence.reconcile.get("drift")
    if evidence.reconcile_status != 0 or drift != []:
        check.violations.append(f"make reconcile exited {evidence.reconcile_status}: {drift or evidence.reconcile}")
    check.counts["drifting accounts"] = len(drift or [])
    return check


def each_reservation_ends_once(evidence: Evidence) -> Check:
    """Every reservation in the journal has one reserve and exactly one terminal entry."""
    check = Check("every reservation reserved once and ended once", {"reservations": len(evidence.ledger)})
    for rid, entries in evidence.ledger.items():
        kinds = Counter(e.kind for e in entries)
        ends = sum(kinds[k] for k in TERMINAL)
        if kinds["reserve"] != 1 or ends != 1:
            check.violations.append(f"reservation {rid}: {dict(kinds)}")
    return check


def _chat_charges(answers: Sequence[Answer], evidence: Evidence) -> Iterator[tuple[Answer, str, list[int]]]:
    """Each chat request, how to name it, and the charges the journal holds over its reservations."""
    for a in answers:
        if a.kind in CHAT:
            rids = chat_reservations(evidence.message_ids.get(a.request_id, []))
            charges = [c for rid in rids for c in _charges(evidence.ledger.get(rid, []))]
            yield a, f"{a.kind} {a.request_id} (status {a.status})", charges


def chat_never_overcharged(answers: Sequence[Answer], evidence: Evidence) -> Check:
    """No chat request charged twice, or more than its answer said; a refused one not at all; one
    whose outcome the client cannot know (no answer: gateway killed; a 504: the gateway stopped
    waiting or a publish may have reached the broker; a stream that ended in an error) at most once."""
    check = Check("no chat request charged twice, beyond its answer, or when refused")
    counted: Counter[str] = Counter()
    for a, where, charges in _chat_charges(answers, evidence):
        if a.status == 200 and a.stream_error is None:
            counted["answered"] += 1
            if len(charges) > 1 or sum(charges) > (a.credits or 0):
                check.violations.append(f"{where}: reported {a.credits} credits, the journal charged {charges}")
        elif a.status in (200, None, 504):
            what = {None: "no answer", 504: "outcome unknown (504)"}.get(a.status, "stream ended in error")
            counted[what] += 1
            counted[f"{what}, charged"] += bool(charges)
            if len(charges) > 1:
                check.violations.append(f"{where}: {what}, charged {charges}")
        else:
            counted[f"refused {a.status}"] += 1
            if charges:
                check.violations.append(f"{where}: refused, yet charged {charges}: {a.detail}")
    check.counts = dict(sorted(counted.items()))
    return check


def chat_charged_as_reported(answers: Sequence[Answer], evidence: Evidence) -> Check:
    """A 200 chat answer: exactly one commit, of the credits it reported, over its reservations."""
    check = Check("every chat answer charged exactly what it reported")
    counted: Counter[str] = Counter()
    for a, where, charges in _chat_charges(answers, evidence):
        if a.status != 200 or a.stream_error is not None:
            continue
        counted["answered"] += 1
        if a.request_id not in evidence.message_ids:
            check.violations.append(f"{where}: no CompleteChat seen for it, so its charge cannot be traced")
        elif charges != ([a.credits] if a.credits else []):
            counted["charged otherwise"] += 1
            check.violations.append(f"{where}: reported {a.credits} credits, the journal charged {charges}")
    check.counts = dict(sorted(counted.items()))
    return check


def usage_matches_journal(answers: Sequence[Answer], evidence: Evidence) -> Check:
    """Usage records (at least once, by design lost with a crashed chat process) agree with the
    answer and the journal: the same credits, never for an answer that was refused."""
    check = Check("usage records agree with answers and the journal")
    counted: Counter[str] = Counter()
    for a in answers:
        if a.kind not in CHAT:
            continue
        records = evidence.usage.get(a.request_id, [])
        if a.status == 200 and a.stream_error is None:
            if not records:
                counted["answered, no usage record (lost with a crash)"] += 1
                continue
            counted["answered, recorded"] += 1
            if any(r != a.credits for r in records):
                check.violations.append(f"{a.kind} {a.request_id}: answer says {a.credits} credits, usage {records}")
        elif a.status not in (None, 200, 504) and any(records):
            check.violations.append(f"{a.kind} {a.request_id}: refused ({a.status}), usage records {records}")
    check.counts = dict(sorted(counted.items()))
    return check


def no_hold_past_ttl(evidence: Evidence, *, grace: timedelta) -> Check:
    check = Check("no reservation open past its TTL", {"open holds": len(evidence.open_holds)})
    now = evidence.now
    assert now is not None
    for hold in evidence.open_holds:
        expires: datetime = hold["expires"]
        if expires + grace < now:
            check.violations.append(
                f"hold {hold['id']} of {hold['user']} ({hold['amount']}) expired at {expires.isoformat()}, "
                f"still open at {now.isoformat()}"
            )
    return check


def image_jobs_settled(answers: Sequence[Answer], evidence: Evidence) -> Check:
    """Every accepted job terminal; a succeeded one charged once, with its image and file; a failed
    one charged nothing; no stored file without an image record."""
    check = Check("every accepted image job terminal, charged once or not at all, no orphaned file")
    counted: Counter[str] = Counter()
    files = set(evidence.files)
    keys = {image["key"]: image_id for image_id, image in evidence.images.items()}
    for a in answers:
        if a.kind != "image" or a.job_id is None:
            continue
        job = evidence.jobs.get(a.job_id)
        if job is None:
            check.violations.append(f"job {a.job_id} (request {a.request_id}) accepted but never recorded")
            continue
        counted[job["status"]] += 1
        charges = _charges(evidence.ledger.get(job["reservation"], []))
        if job["status"] == "succeeded":
            image = evidence.images.get(job["image"] or "")
            if charges != [job["charged"]] or not job["charged"]:
                check.violations.append(f"job {a.job_id} succeeded: charged {job['charged']}, journal {charges}")
            if image is None or image["status"] != "ready" or image["key"] not in files:
                check.violations.append(
                    f"job {a.job_id} succeeded: image {image}, file present: {image and image['key'] in files}"
                )
        elif job["status"] == "failed":
            if charges:
                check.violations.append(f"job {a.job_id} failed, yet charged {charges}")
        else:
            check.violations.append(f"job {a.job_id} still {job['status']} after the run settled")
    for key in sorted(files - set(keys)):
        check.violations.append(f"stored file {key} has no image record")
    counted["stored files"] = len(files)
    check.counts = dict(sorted(counted.items()))
    return check


def grants_applied_once(answers: Sequence[Answer], evidence: Evidence) -> Check:
    check = Check("every admin grant applied exactly once")
    counted: Counter[str] = Counter()
    for a in answers:
        if a.kind != "grant" or a.key is None:
            continue
        seen = evidence.grants.get(f"admin:{a.user}:{a.key}", 0)
        if a.status == 200:
            counted["granted"] += 1
            if seen != 1:
                check.violations.append(f"grant {a.key} answered 200, journal holds it {seen} times")
        else:
            counted["refused or unanswered"] += 1
            counted["refused or unanswered, applied"] += seen
            if seen > 1:
                check.violations.append(f"grant {a.key} ({a.status}) applied {seen} times")
    check.counts = dict(sorted(counted.items()))
    return check


def dead_letters_explained(answers: Sequence[Answer], evidence: Evidence) -> list[dict[str, Any]]:
    """Each dead-lettered message with why it was, and what its requester was told."""
    told = {a.request_id: a for a in answers}
    out = []
    for d in evidence.dead_letters:
        a = told.get(d.request_id or "")
        out.append(
            {
                "queue": d.queue,
                "type": d.type,
                "reason": {"rejected": "did not parse", "delivery_limit": "failed on every delivery"}.get(
                    d.reason, d.reason
                ),
                "request_id": d.request_id,
                "requester_got": None if a is None else a.status,
                "error": d.error,
            }
        )
    return out


def recovery(answers: Sequence[Answer], injections: Sequence[Injection]) -> list[dict[str, Any]]:
    """For each fault: seconds from its heal until a request of each kind succeeded again
    (None: none did before the run ended)."""
    ok = sorted((a for a in answers if a.ok), key=lambda a: a.started)
    rows = []
    for n, inj in enumerate(injections):
        row: dict[str, Any] = {"kind": inj.kind, "target": inj.target, "lasted_s": None, "recovered_s": {}}
        if inj.healed is not None:
            row["lasted_s"] = round(inj.healed - inj.injected, 2)
            if n + 1 < len(injections):  # a recovery longer than this overlaps the next fault
                row["next_fault_s"] = round(injections[n + 1].injected - inj.healed, 2)
            for kind in KINDS:
                first = next((a for a in ok if a.kind == kind and a.started >= inj.healed), None)
                row["recovered_s"][kind] = None if first is None else round(max(first.ended - inj.healed, 0.0), 2)
        rows.append(row)
    return rows


def all_checks(answers: Sequence[Answer], evidence: Evidence, *, grace: timedelta) -> list[Check]:
    return [
        no_drift(evidence),
        each_reservation_ends_once(evidence),
        chat_never_overcharged(answers, evidence),
        chat_charged_as_reported(answers, evidence),
        usage_matches_journal(answers, evidence),
        no_hold_past_ttl(evidence, grace=grace),
        image_jobs_settled(answers, evidence),
        grants_applied_once(answers, evidence),
    ]
