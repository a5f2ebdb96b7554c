"""The web console's own unit tests (web/tests, Vitest: the SSE parser, problem+json handling,
image jobs followed over SSE against a real local HTTP server, gallery pages), run by
`make test` like every other tier."""

from __future__ import annotations

import pytest
import webbuild

pytestmark = pytest.mark.unit


def test_the_web_consoles_vitest_suite_passes() -> None:
    done = webbuild.npm_test()
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert " passed" in done.stdout
