"""OpenTelemetry set-up and W3C trace-context propagation through message envelopes.

MongoDB and Redis calls are traced through their OpenTelemetry instrumentations. Export
follows the standard OTEL_* variables: with OTEL_EXPORTER_OTLP_ENDPOINT (or
OTEL_TRACES_EXPORTER=otlp) spans go out over OTLP/HTTP; otherwise they are recorded but
not exported. Tests install their own in-memory exporter through `span_processors`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from opentelemetry import context, propagate, trace
from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def configure_tracing(*, service: str, span_processors: Sequence[SpanProcessor] = ()) -> TracerProvider:
    """Install a tracer provider for this process (once; later calls reuse it)."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        provider = current
    else:
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
        exporter_name = os.environ.get(
            "OTEL_TRACES_EXPORTER", "otlp" if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") else "none"
        )
        if exporter_name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        # MongoDB and Redis calls get client spans from their official instrumentations (a
        # pymongo command listener, and redis-py's client patched in place by OpenTelemetry).
        PymongoInstrumentor().instrument()
        RedisInstrumentor().instrument()
    for processor in span_processors:
        provider.add_span_processor(processor)
    return provider


def current_trace_context() -> tuple[str | None, str | None]:
    """The (traceparent, tracestate) of the active span, for an outgoing message."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent"), carrier.get("tracestate")


def context_from(traceparent: str | None, tracestate: str | None) -> context.Context:
    """The context an incoming message's trace fields describe (empty if none)."""
    carrier = {k: v for k, v in (("traceparent", traceparent), ("tracestate", tracestate)) if v}
    return propagate.extract(carrier)


def trace_id_hex() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
