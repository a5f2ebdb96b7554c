"""OpenTelemetry set-up and W3C trace-context propagation through message envelopes.

MongoDB and Redis calls are traced through their OpenTelemetry instrumentations. Export
follows the standard OTEL_* variables: with OTEL_EXPORTER_OTLP_ENDPOINT (or
OTEL_TRACES_EXPORTER=otlp) spans go out over OTLP/HTTP. Spans are recorded only while
something receives them (an exporter, or a test's in-memory processor through
`span_processors`); otherwise they are non-recording, while trace ids are still made and
carried in every message and log line. Our own spans are opened through `span()`, which while
nothing records makes no span inside a trace at all (see there).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from types import TracebackType

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler, SamplingResult
from opentelemetry.trace import Link, Span, SpanKind, Tracer, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes


class RecordWhenReceived(Sampler):
    """Records spans only while the provider has a span processor to hand them to."""

    def __init__(self) -> None:
        self.receiving = False

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        sampler = ALWAYS_ON if self.receiving else ALWAYS_OFF
        return sampler.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return "RecordWhenReceived"


# The sampler of the provider `configure_tracing` installed: whether spans are recorded now.
# None (tracing not configured in this process): `span()` always makes its span.
_sampler: RecordWhenReceived | None = None


def configure_tracing(*, service: str, span_processors: Sequence[SpanProcessor] = ()) -> TracerProvider:
    """Install a tracer provider for this process (once; later calls reuse it)."""
    global _sampler
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        provider = current
    else:
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}), sampler=RecordWhenReceived())
        exporter_name = os.environ.get(
            "OTEL_TRACES_EXPORTER", "otlp" if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") else "none"
        )
        if exporter_name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            _receive(provider, BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        _sampler = provider.sampler if isinstance(provider.sampler, RecordWhenReceived) else None
        # MongoDB and Redis calls get client spans from their official instrumentations (a
        # pymongo command listener, and redis-py's client patched in place by OpenTelemetry).
        PymongoInstrumentor().instrument()
        RedisInstrumentor().instrument()
    for processor in span_processors:
        _receive(provider, processor)
    return provider


def _receive(provider: TracerProvider, processor: SpanProcessor) -> None:
    provider.add_span_processor(processor)
    if isinstance(provider.sampler, RecordWhenReceived):
        provider.sampler.receiving = True


class _Within:
    """The context manager `span()` gives instead of a span: `parent` made current for the block,
    and the span it holds (non-recording) handed out, as a span of the block would be."""

    __slots__ = ("_parent", "_token")

    def __init__(self, parent: Context | None) -> None:
        self._parent = parent
        self._token: object | None = None

    def __enter__(self) -> Span:
        if self._parent is None:
            return trace.get_current_span()
        self._token = context.attach(self._parent)
        return trace.get_current_span(self._parent)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._token is not None:
            context.detach(self._token)  # type: ignore[arg-type]


def span(
    tracer: Tracer,
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Attributes = None,
    parent: Context | None = None,
) -> contextlib.AbstractContextManager[Span]:
    """`tracer.start_as_current_span(name, context=parent, ...)` while spans are recorded. While
    nothing records them, a span inside a trace would only add a span id nobody sees: the block
    then runs in its parent's context (`parent`, else the current one), whose trace id is the one
    messages and log lines carry. That costs a fraction of a non-recording span's ids, sampler
    call and context switch, on every hop of every request. A span that would start a trace (no
    valid parent) is always made: it is what gives a request its trace id."""
    recording = _sampler is None or _sampler.receiving
    if not recording and trace.get_current_span(parent).get_span_context().is_valid:
        return _Within(parent)
    return tracer.start_as_current_span(name, context=parent, kind=kind, attributes=attributes)


# Messages carry the W3C trace context only (the envelope has no baggage field), so only its
# propagator runs, not the global composite one (which also serialises baggage every time).
_W3C = TraceContextTextMapPropagator()


def current_trace_context() -> tuple[str | None, str | None]:
    """The (traceparent, tracestate) of the active span, for an outgoing message."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier.get("traceparent"), carrier.get("tracestate")


def context_from(traceparent: str | None, tracestate: str | None) -> context.Context:
    """The context an incoming message's trace fields describe (empty if none)."""
    carrier = {k: v for k, v in (("traceparent", traceparent), ("tracestate", tracestate)) if v}
    return _W3C.extract(carrier)


def trace_id_hex() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
