"""The access log: fast successes at DEBUG (no line on the hot path at the default level),
client errors and slow requests at INFO, server errors at WARNING; each line with its request id."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import pytest

from common.logs import JsonFormatter
from gateway.app import create_app
from gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter("gateway"))
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def access_log() -> Iterator[Lines]:
    logger = logging.getLogger("gateway.access")
    handler, level = Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def finished(lines: Lines, response: httpx.Response) -> dict[str, object]:
    (line,) = [x for x in lines.lines if x.get("request_id") == response.headers["x-request-id"]]
    assert line["event"] == "request finished"
    return line


async def test_fast_successes_are_debug_and_client_errors_info(client: httpx.AsyncClient, access_log: Lines) -> None:
    ok = await client.get("/healthz")
    refused = await client.get("/v1/credits")
    assert (ok.status_code, refused.status_code) == (200, 401)
    assert finished(access_log, ok)["level"] == "debug"
    line = finished(access_log, refused)
    assert (line["level"], line["status"], line["path"], line["method"]) == ("info", 401, "/v1/credits", "GET")


async def test_with_no_threshold_every_request_is_info(gateway_settings: GatewaySettings, access_log: Lines) -> None:
    app = create_app(gateway_settings.model_copy(update={"slow_request_ms": 0}))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://g") as http:
        ok = await http.get("/healthz", headers={"X-Request-ID": "slow-request-0001"})
    assert ok.headers["x-request-id"] == "slow-request-0001"
    assert finished(access_log, ok)["level"] == "info"
