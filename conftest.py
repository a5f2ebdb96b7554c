import os

import pytest

# The settings default to production; tests run the development configuration, as `make run` does.
os.environ.setdefault("ENVIRONMENT", "development")

pytest_plugins = ["tests.support.fixtures", "tests.simulator.fixtures"]

KINDS = ("unit", "integration", "e2e")  # `make test` selects by these: a test without one never runs there


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    unmarked = [item.nodeid for item in items if not any(item.get_closest_marker(kind) for kind in KINDS)]
    if unmarked:
        raise pytest.UsageError(f"tests without a {'/'.join(KINDS)} marker (make test would skip them): {unmarked}")
