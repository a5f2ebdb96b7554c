"""The soak's report: one JSON document (written to the results folder) and a short table."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from chaos.faults import Injection
from chaos.invariants import Check
from chaos.load import KINDS, Answer


def build(
    *,
    run: dict[str, Any],
    answers: Sequence[Answer],
    injections: Sequence[Injection],
    checks: Sequence[Check],
    dead_letters: list[dict[str, Any]],
    recovery: list[dict[str, Any]],
) -> dict[str, Any]:
    traffic = {}
    for kind in KINDS:
        mine = [a for a in answers if a.kind == kind]
        statuses = Counter("none" if a.status is None else str(a.status) for a in mine)
        traffic[kind] = {
            "requests": len(mine),
            "ok": sum(a.ok for a in mine),
            "statuses": dict(sorted(statuses.items())),
        }
    return {
        "holds": all(c.holds for c in checks),
        "run": run,
        "traffic": traffic,
        "faults": dict(sorted(Counter(i.kind for i in injections).items())),
        "checks": {c.name: c.to_json() for c in checks},
        "dead_letters": {"count": len(dead_letters), "messages": dead_letters},
        "recovery": {"by_kind": worst_recovery(recovery), "each": recovery},
        "injections": [i.to_json() for i in injections],
        "odd_answers": [a.to_json() for a in answers if a.status not in (200, 202, None)][:30],
    }


def worst_recovery(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per fault kind: how many, the longest it lasted, and the longest wait for each request kind
    to succeed again after it healed ("never": none did before the run ended)."""
    out: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"injected": 0, "healed": 0, "lasted_s": 0.0, "recovered_s": {}}
    )
    for row in rows:
        summary = out[row["kind"]]
        summary["injected"] += 1
        if row["lasted_s"] is None:
            continue
        summary["healed"] += 1
        summary["lasted_s"] = max(summary["lasted_s"], row["lasted_s"])
        for kind, seconds in row["recovered_s"].items():
            worst = summary["recovered_s"].get(kind, 0.0)
            summary["recovered_s"][kind] = "never" if seconds is None or worst == "never" else max(worst, seconds)
    return dict(sorted(out.items()))


def table(report: dict[str, Any]) -> str:
    lines = [f"chaos soak {report['run'].get('id', '')}: {'PASS' if report['holds'] else 'FAIL'}", ""]
    lines.append(f"{'traffic':<14}{'requests':>9}{'ok':>7}  statuses")
    for kind, t in report["traffic"].items():
        statuses = " ".join(f"{s}:{n}" for s, n in t["statuses"].items())
        lines.append(f"{kind:<14}{t['requests']:>9}{t['ok']:>7}  {statuses}")
    lines += ["", f"{'fault':<20}{'n':>3}{'longest s':>10}  worst recovery after heal, s (per request kind)"]
    for kind, r in report["recovery"]["by_kind"].items():
        rec = " ".join(f"{k}:{v}" for k, v in r["recovered_s"].items())
        lines.append(f"{kind:<20}{r['injected']:>3}{r['lasted_s']:>10}  {rec}")
    lines += ["", "invariants"]
    for name, c in report["checks"].items():
        counts = ", ".join(f"{k} {v}" for k, v in c["counts"].items())
        lines.append(f"  {'ok  ' if c['holds'] else 'FAIL'} {name} ({counts})")
        lines += [f"         {v}" for v in c["violations"][:10]]
    dead = report["dead_letters"]
    lines.append(f"  dead-lettered messages: {dead['count']}")
    alike = Counter((d["queue"], d["type"], d["reason"], d["requester_got"], d.get("error")) for d in dead["messages"])
    for (queue, kind, reason, got, error), n in alike.most_common(10):
        lines.append(f"    {n:>4} x {queue} {kind}: {reason}, requester got {got}")
        if error:
            lines.append(f"           last error: {error}")
    if "file" in report["run"]:
        lines.append(f"\nreport: {report['run']['file']}")
    return "\n".join(lines)
