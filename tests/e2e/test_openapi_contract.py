"""The gateway keeps the promises of its OpenAPI document.

Schemathesis reads `/openapi.json` from the running system (every service a real process)
and does what `st run --checks all` does: every phase (examples, coverage, fuzzing, stateful)
over every operation, with every check (server errors, status codes, content types, headers,
response schemas, valid data accepted and invalid data refused, 405s with `Allow`, missing
auth refused, deleted resources gone, created ones there). Any failure is a place where a
client generated from the document would meet other behaviour than documented. The examples
are bounded and the seed fixed, so a run is the same each time and takes well under a minute.

Server-sent events are checked one by one against their documented event schema. Nothing is
excluded and no operation is named here, so operations added later are covered as they come;
413 counts as a refusal (see TOO_LARGE). The caller is an admin (every operation is reachable), with credits
enough that no request is refused for want of them (a 402 is documented, but a valid request
that is refused is reported), and the Clerk webhook is configured as in production.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import jwt
import pytest
import schemathesis
from schemathesis.engine import Status, events, from_schema

from devstack import Stack
from gateway.auth.dev_issuer import DevIssuer

pytestmark = pytest.mark.e2e

SEED = 20261204
MAX_EXAMPLES = 10  # per operation in the fuzzing phase; the coverage phase's cases come on top
WEBHOOK_SECRET = "whsec_" + base64.b64encode(os.urandom(24)).decode()
# 413 is a refusal too: a body over MAX_BODY_BYTES, or a prompt over MAX_PROMPT_CHARS (a sum over
# the messages, which no schema can state). Each route that takes a body documents it, and
# `status_code_conformance` holds every other operation to its documented statuses.
TOO_LARGE = "413"
NEGATIVE_DATA_REJECTED = ["400", "401", "403", "404", "405", "406", "409", TOO_LARGE, "415", "422", "428", "429", "5xx"]
POSITIVE_DATA_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", TOO_LARGE, "429", "5xx"]


def admin_token(stack: Stack) -> str:
    """A development token for an admin who has credits enough for the whole run."""
    issuer = DevIssuer(issuer="urn:aisaas:dev-issuer", key_file=stack.data_dir / "dev-issuer-key.pem")
    token = issuer.token(email="contract@example.com", role="admin")
    grant = {"user_id": jwt.decode(token, options={"verify_signature": False})["sub"], "amount": 1_000_000}
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
    response = httpx.post(stack.gateway_url + "/v1/admin/credits/grants", json=grant, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return token


@dataclass
class Run:
    """What a schemathesis run did: scenarios per label, requests sent, seconds, failures."""

    operations: int = 0
    failures: list[str] = field(default_factory=list)
    scenarios: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.operations} operations, {sum(self.scenarios.values())} scenarios, {self.requests} requests, "
            f"{len(self.failures)} failures in {self.seconds:.1f} s"
        )


def record(stream: Iterator[events.EngineEvent]) -> Run:
    """Every failed check and engine error of a run, one readable entry each, and its counts."""
    run = Run()
    for event in stream:
        if isinstance(event, events.ScenarioFinished):
            run.scenarios[event.recorder.label] += 1
            run.requests += len(event.recorder.interactions)
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        failure = check.failure_info.failure
                        run.failures.append(
                            f"{event.recorder.label}: {failure.title}\n{failure.message}\n"
                            f"{check.failure_info.code_sample}"
                        )
        elif isinstance(event, events.NonFatalError):
            run.failures.append(f"{event.label}: error: {event.info.message}")
        elif isinstance(event, events.FatalError):
            run.failures.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            run.seconds = event.running_time
            run.failures += [f"{f.operation}: {f.title}\n{f.message}" for f in event.failures]
    return run


@pytest.mark.stack_env(CLERK_WEBHOOK_SECRET=WEBHOOK_SECRET)
def test_every_operation_passes_every_schemathesis_check(stack: Stack) -> None:
    token = admin_token(stack)
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "headers": {"Authorization": f"Bearer {token}"},
            "workers": 1,
            "checks": {
                "negative_data_rejection": {"expected-statuses": NEGATIVE_DATA_REJECTED},
                "positive_data_acceptance": {"expected-statuses": POSITIVE_DATA_ACCEPTED},
            },
        }
    )
    project = config.projects.override
    project.phases.update(phases=["examples", "coverage", "fuzzing", "stateful"])
    project.checks.update(included_check_names=["all"])
    project.generation.update(max_examples=MAX_EXAMPLES, deterministic=True)
    schema = schemathesis.openapi.from_url(stack.gateway_url + "/openapi.json", config=config)
    operations = len(list(schema.get_all_operations()))
    assert operations >= 20  # the whole API, not a filtered part

    run = record(from_schema(schema).execute())
    run.operations = operations

    print(run.summary())  # shown with `pytest -s`, and in the report of a failed run
    assert run.requests > 0
    assert not run.failures, run.summary() + ":\n\n" + "\n\n".join(run.failures)
