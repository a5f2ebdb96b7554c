"""One trace covers a chat request's whole path — gateway, chat, credits, provider — across
the broker, recorded with an in-memory exporter while the services' real wiring runs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from chat.settings import ChatSettings
from common.telemetry import configure_tracing
from credits.settings import CreditsSettings
from gateway.settings import GatewaySettings
from tests.support.services import in_process
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
async def services(gateway_settings: GatewaySettings, mongodb_url: str) -> AsyncIterator[None]:
    common = gateway_settings.model_dump(include={"amqp_url", "redis_url", "bus_namespace"})
    database = f"t_{gateway_settings.bus_namespace}"
    credits = CreditsSettings(**common, mongodb_url=mongodb_url, mongodb_database=database)
    chat = ChatSettings(**common, mongodb_url=mongodb_url, mongodb_database=database, chat_cache_ttl_s=0)
    async with in_process("credits", credits), in_process("chat", chat):
        yield


async def test_one_trace_covers_gateway_chat_credits_and_provider(
    client: httpx.AsyncClient, auth: dict[str, str], services: None
) -> None:
    exporter = InMemorySpanExporter()
    configure_tracing(service="test", span_processors=[SimpleSpanProcessor(exporter)])
    response = await client.post("/v1/chat", json={"messages": [{"role": "user", "content": "trace me"}]}, headers=auth)
    assert response.status_code == 200, response.text

    expected = {
        "POST /v1/chat",
        "CompleteChat publish",
        "CompleteChat process",
        "credits reserve",
        "ReserveCredits publish",
        "ReserveCredits process",
        "chat local",
        "credits commit",
        "CommitReservation publish",
        "CommitReservation process",
    }

    def in_trace() -> set[str]:
        spans = exporter.get_finished_spans()
        root = next(s for s in spans if s.name == "POST /v1/chat")
        return {s.name for s in spans if s.context.trace_id == root.context.trace_id}

    async def probe() -> set[str]:
        return in_trace()

    # Consumers end their spans just after replying: wait for them rather than race them.
    await wait_until(probe, lambda names: expected <= names, within=5)
    spans = exporter.get_finished_spans()
    root = next(s for s in spans if s.name == "POST /v1/chat")
    by_name = {s.name: s for s in spans if s.context.trace_id == root.context.trace_id}
    # Parentage crosses the broker: the credits consumer hangs under the chat service's publish.
    assert by_name["ReserveCredits process"].parent.span_id == by_name["ReserveCredits publish"].context.span_id  # type: ignore[union-attr]
    assert by_name["CompleteChat process"].parent.span_id == by_name["CompleteChat publish"].context.span_id  # type: ignore[union-attr]


async def test_a_clients_traceparent_is_continued_by_the_one_server_span(client: httpx.AsyncClient) -> None:
    exporter = InMemorySpanExporter()
    configure_tracing(service="test", span_processors=[SimpleSpanProcessor(exporter)])
    trace_id, parent_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    response = await client.get(
        "/healthz", headers={"traceparent": f"00-{trace_id}-{parent_id}-01", "X-Request-ID": "traced-request-01"}
    )
    assert response.status_code == 200
    spans = exporter.get_finished_spans()
    (server,) = [s for s in spans if s.attributes and s.attributes.get("aisaas.request_id") == "traced-request-01"]
    assert server.name == "GET /healthz" and server.kind == SpanKind.SERVER
    assert format(server.context.trace_id, "032x") == trace_id
    assert server.parent is not None and format(server.parent.span_id, "016x") == parent_id
    assert not trace.get_current_span().get_span_context().is_valid  # the client's context did not leak out
    # The gateway's span is the request's only server span (FastAPI's own telemetry is off).
    in_trace = [s for s in exporter.get_finished_spans() if s.context.trace_id == server.context.trace_id]
    assert [s.name for s in in_trace] == ["GET /healthz"]
