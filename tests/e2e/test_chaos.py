"""A one-minute chaos soak (`make chaos` in short): the whole stack with two replicas of chat,
credits and imagegen under a mixed load, every fault kind injected at least once, RabbitMQ
restarts included (hence `disruptive`), then the invariants checked against the stores."""

from __future__ import annotations

from pathlib import Path

import pytest
from chaos.faults import PROVIDER_FAULTS
from chaos.report import table
from chaos.soak import Options, soak

pytestmark = [pytest.mark.e2e, pytest.mark.disruptive]

FAULT_KINDS = {"sigkill", "broker", "mongo", "redis", *PROVIDER_FAULTS}
ASSERTED = (
    "reconcile: zero drift",
    "every reservation reserved once and ended once",
    "no chat request charged twice, beyond its answer, or when refused",
    "every chat answer charged exactly what it reported",
    "usage records agree with answers and the journal",
    "no reservation open past its TTL",
    "every accepted image job terminal, charged once or not at all, no orphaned file",
    "every admin grant applied exactly once",
)


async def test_a_minute_of_faults_under_load_breaks_no_invariant(tmp_path: Path, amqp_url: str, redis_url: str) -> None:
    report = await soak(
        Options(
            duration=60,
            users=8,
            workers=6,
            broker_faults=True,
            gap=(1.0, 2.0),
            results=tmp_path,
            amqp_url=amqp_url,
            redis_url=redis_url,
        )
    )
    print(table(report))

    assert set(report["faults"]) == FAULT_KINDS, report["faults"]
    assert {name for name in report["checks"]} >= set(ASSERTED)
    failed = {
        name: report["checks"][name]["violations"][:5] for name in ASSERTED if not report["checks"][name]["holds"]
    }
    assert failed == {}
    assert report["checks"]["reconcile: zero drift"]["counts"]["accounts"] >= 8
    assert all(t["ok"] > 0 for t in report["traffic"].values()), report["traffic"]
