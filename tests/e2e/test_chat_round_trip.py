"""HTTP → gateway → RabbitMQ → chat service → reply, with every service a real process."""

from __future__ import annotations

import time

import httpx
import pytest

from devstack import Stack
from gateway.auth.dev_issuer import DevIssuer
from tests.support.broker import restart_broker

pytestmark = pytest.mark.e2e

HELLO = {"messages": [{"role": "user", "content": "Hello from the e2e test"}]}


def token(stack: Stack) -> dict[str, str]:
    issuer = DevIssuer(issuer="urn:aisaas:dev-issuer", key_file=stack.data_dir / "dev-issuer-key.pem")
    return {"Authorization": "Bearer " + issuer.token(email="e2e@example.com", role="user")}


def chat(stack: Stack, *, timeout: str = "10", request_id: str | None = None) -> httpx.Response:
    headers = token(stack) | {"X-Request-Timeout": timeout} | ({"X-Request-ID": request_id} if request_id else {})
    return httpx.post(stack.gateway_url + "/v1/chat", json=HELLO, headers=headers, timeout=30)


def lines_with(stack: Stack, service: str, request_id: str) -> list[dict[str, object]]:
    return [line for line in stack.processes[service].json_lines() if line.get("request_id") == request_id]


@pytest.mark.stack_env(LOG_LEVEL="DEBUG")  # at INFO a fast request writes no line: nothing to correlate
def test_chat_round_trip_shares_request_id_and_trace_across_services(stack: Stack) -> None:
    response = chat(stack, request_id="e2e-request-0001")
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "e2e-request-0001"
    assert "Hello from the e2e test" in response.json()["message"]["content"]

    gateway_line = stack.processes["gateway"].wait_for_line(
        lambda s: "e2e-request-0001" in s and "request finished" in s, timeout=10
    )
    stack.processes["chat"].wait_for_line(lambda s: "e2e-request-0001" in s and "message handled" in s, timeout=10)
    gateway_lines, chat_lines = (
        lines_with(stack, "gateway", "e2e-request-0001"),
        lines_with(stack, "chat", "e2e-request-0001"),
    )
    assert gateway_lines and chat_lines, gateway_line
    trace_ids = {line.get("trace_id") for line in gateway_lines + chat_lines}
    assert len(trace_ids) == 1 and None not in trace_ids, trace_ids


def test_chat_service_down_gives_504_within_the_deadline_then_recovers(stack: Stack) -> None:
    assert chat(stack).status_code == 200
    stack.processes["chat"].kill()

    started = time.monotonic()
    response = chat(stack, timeout="2")
    elapsed = time.monotonic() - started
    assert response.status_code == 504, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["request_id"] == response.headers["x-request-id"]
    assert elapsed < 3.5, elapsed

    stack.start_service("chat")
    response = chat(stack)
    assert response.status_code == 200, response.text


@pytest.mark.disruptive
def test_services_reconnect_after_a_broker_restart(stack: Stack) -> None:
    assert chat(stack).status_code == 200
    restart_broker()
    deadline = time.monotonic() + 90
    statuses: list[int] = []
    while time.monotonic() < deadline:
        status = chat(stack, timeout="3").status_code
        statuses.append(status)
        if status == 200:
            break
        time.sleep(0.5)
    assert statuses[-1] == 200, statuses
    assert all(p.running for p in stack.processes.values()), "a service died instead of reconnecting"
    assert chat(stack).status_code == 200
