"""`common.telemetry.span`: while nothing records spans, a block inside a trace runs in its
parent's context (same trace id, no new span); a block that starts a trace still gets one; once
something receives spans, every block is a span of its own. Each case runs in a fresh Python
process, since the tracer provider is installed once per process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.unit

SCRIPT = textwrap.dedent(
    """
    import json
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from common.telemetry import configure_tracing, context_from, current_trace_context, span

    exporter = InMemorySpanExporter()
    configure_tracing(service="t", span_processors=[SimpleSpanProcessor(exporter)] if RECORD else [])
    tracer = trace.get_tracer("t")
    seen = {}
    with span(tracer, "request") as outer:
        seen["outer"] = current_trace_context()[0]
        with span(tracer, "step") as inner:
            seen["inner"] = current_trace_context()[0]
            seen["same_span"] = inner is outer
    seen["after"] = current_trace_context()[0]
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with span(tracer, "message process", parent=context_from(incoming, None)):
        seen["from_message"] = current_trace_context()[0]
    seen["after_message"] = current_trace_context()[0]
    seen["recorded"] = sorted(s.name for s in exporter.get_finished_spans())
    print(json.dumps(seen))
    """
)


def run(*, record: bool) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", f"RECORD = {record}\n{SCRIPT}"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    seen: dict[str, object] = json.loads(done.stdout)
    return seen


def trace_id(traceparent: object) -> str:
    assert isinstance(traceparent, str)
    return traceparent.split("-")[1]


def test_unrecorded_blocks_inside_a_trace_share_their_parents_context_and_a_new_trace_still_starts() -> None:
    seen = run(record=False)
    assert seen["outer"] is not None  # the block that starts the trace made it its id
    assert seen["inner"] == seen["outer"] and seen["same_span"] is True
    assert seen["from_message"] == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert seen["after"] is None and seen["after_message"] is None  # each block's context is left behind it
    assert seen["recorded"] == []


def test_recorded_blocks_are_spans_of_their_own_in_the_same_trace() -> None:
    seen = run(record=True)
    assert seen["inner"] != seen["outer"] and trace_id(seen["inner"]) == trace_id(seen["outer"])
    assert trace_id(seen["from_message"]) == "0af7651916cd43dd8448eb211c80319c"
    assert seen["from_message"] != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert seen["recorded"] == ["message process", "request", "step"]
