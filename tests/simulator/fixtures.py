"""Pytest fixtures for the provider simulator.

One server per test session (`simulator_server`, started on first use), reset before every test by the
function-scoped `simulator` fixture: each test starts with no faults, zeroed counters and no stored
predictions or assets. `simulator_env` also points the SDKs' environment variables at it.

Use from another test folder with `pytest_plugins = ["tests.simulator.fixtures"]` in the root conftest,
or by importing the fixtures into a conftest.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.simulator.server import RunningSimulator, run_simulator


@pytest.fixture(scope="session")
def simulator_server() -> Iterator[RunningSimulator]:
    with run_simulator() as running:
        yield running


@pytest.fixture
def simulator(simulator_server: RunningSimulator) -> RunningSimulator:
    simulator_server.sim.reset()
    return simulator_server


@pytest.fixture
def simulator_env(simulator: RunningSimulator, monkeypatch: pytest.MonkeyPatch) -> RunningSimulator:
    for name, value in simulator.base_urls.env().items():
        monkeypatch.setenv(name, value)
    return simulator
