"""The contracts' patterns mean the same to pydantic (which enforces them) and to ECMAScript (how
the OpenAPI document's readers, generated clients and fuzzers read them), run here by Node.js."""

from __future__ import annotations

import json
import subprocess
from typing import Annotated

import pytest
from pydantic import BaseModel, Field, ValidationError

from common.contracts.chatfeatures import IMAGE_URL
from common.contracts.patterns import EMAIL

pytestmark = pytest.mark.unit

# Characters that one dialect's `\s` counts and another's does not, and some that none does.
AWKWARD = ["\x85", "\x1c", "\x1f", "\ufeff", "\u00a0", "\u2028", "\u3000", " ", "\t", "\x00", "a", "é", "漢", "😀"]
CASES = [(IMAGE_URL, f"https://x{c}y") for c in AWKWARD] + [(EMAIL, f"a{c}b@example.com") for c in AWKWARD]


def pydantic_accepts(pattern: str, value: str) -> bool:
    class Probe(BaseModel):
        value: Annotated[str, Field(pattern=pattern)]

    try:
        Probe(value=value)
    except ValidationError:
        return False
    return True


def test_ecmascript_and_pydantic_accept_and_refuse_the_same_values() -> None:
    script = "const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));" + (
        "process.stdout.write(JSON.stringify(cases.map(([p, v]) => new RegExp(p, 'u').test(v))));"
    )
    done = subprocess.run(
        ["node", "-e", script], input=json.dumps(CASES), capture_output=True, text=True, timeout=60, check=True
    )
    ecmascript = json.loads(done.stdout)
    ours = [pydantic_accepts(p, v) for p, v in CASES]
    assert ours == ecmascript, [(v, o, e) for (_, v), o, e in zip(CASES, ours, ecmascript, strict=True) if o != e]
    assert ours.count(True) == 2 * 4  # a, é, 漢 and 😀 in each pattern
