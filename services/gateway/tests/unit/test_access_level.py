import logging

import pytest

from gateway.middleware import access_level

pytestmark = pytest.mark.unit


def test_levels() -> None:
    assert access_level(200, 0.01, 1.0) == logging.DEBUG
    assert access_level(304, 0.01, 1.0) == logging.DEBUG
    assert access_level(200, 1.5, 1.0) == logging.INFO
    assert access_level(429, 0.01, 1.0) == logging.INFO
    assert access_level(503, 0.01, 1.0) == logging.WARNING
    assert access_level(500, 5.0, 1.0) == logging.WARNING
