import importlib.util

import pytest

from gateway.app import server_options

pytestmark = pytest.mark.unit


def test_uvloop_and_httptools_are_used_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = {"uvloop", "httptools"}
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if name in installed else None)
    assert server_options() == {"loop": "uvloop", "http": "httptools"}


def test_without_them_the_standard_library_loop_and_h11_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert server_options() == {"loop": "asyncio", "http": "h11"}
