import logging

import pytest

from gateway.http.request_context import access_level, request_id_from

pytestmark = pytest.mark.unit


def test_levels() -> None:
    assert access_level(200, 0.01, 1.0) == logging.DEBUG
    assert access_level(304, 0.01, 1.0) == logging.DEBUG
    assert access_level(200, 1.5, 1.0) == logging.INFO
    assert access_level(429, 0.01, 1.0) == logging.INFO
    assert access_level(503, 0.01, 1.0) == logging.WARNING
    assert access_level(500, 5.0, 1.0) == logging.WARNING


def test_well_formed_client_id_is_kept() -> None:
    assert request_id_from([(b"X-Request-ID", b"client-req-0001")]) == "client-req-0001"


@pytest.mark.parametrize(
    "value", [b"short", b"has space inside", b"x" * 129, b"<script>alert(1)</script>", "ünïcödé-request".encode()]
)
def test_malformed_client_id_is_replaced(value: bytes) -> None:
    generated = request_id_from([(b"x-request-id", value)])
    assert generated != value.decode(errors="replace") and len(generated) == 32


def test_missing_id_is_generated_uniquely() -> None:
    assert request_id_from([]) != request_id_from([])
