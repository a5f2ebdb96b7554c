"""MongoDB and Redis calls show up as spans of the trace they were made in."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from common.telemetry import configure_tracing

pytestmark = pytest.mark.integration


async def test_mongodb_and_redis_calls_are_spans_of_the_current_trace(
    mongodb_url: str, redis_url: str, namespace: str
) -> None:
    exporter = InMemorySpanExporter()
    configure_tracing(service="test", span_processors=[SimpleSpanProcessor(exporter)])
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)  # created after instrumentation
    redis = Redis.from_url(redis_url)
    try:
        with trace.get_tracer("test").start_as_current_span("work") as work:
            await mongo[f"t_{namespace}"]["things"].insert_one({"n": 1})
            await redis.set(f"{namespace}:thing", "1")
        trace_id = work.get_span_context().trace_id
        spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id and s.name != "work"]
        systems = {s.attributes.get("db.system") or s.attributes.get("db.system.name") for s in spans if s.attributes}
        assert {"mongodb", "redis"} <= systems, [(s.name, dict(s.attributes or {})) for s in spans]
    finally:
        await mongo.drop_database(f"t_{namespace}")
        await mongo.close()
        await redis.aclose()
