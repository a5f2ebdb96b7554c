"""OpenTelemetry set-up and W3C trace-context propagation through message envelopes.

MongoDB and Redis calls are traced through their OpenTelemetry instrumentations. Export
follows the standard OTEL_* variables: with OTEL_EXPORTER_OTLP_ENDPOINT (or
OTEL_TRACES_EXPORTER=otlp) spans go out over OTLP/HTTP. Spans are recorded only while
something receives them (an exporter, or a test's in-memory processor through
`span_processors`); otherwise they are non-recording and cost next to nothing on the hot
path, while trace ids are still made and carried in every message and log line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, TraceState
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


def configure_tracing(*, service: str, span_processors: Sequence[SpanProcessor] = ()) -> TracerProvider:
    """Install a tracer provider for this process (once; later calls reuse it)."""
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
