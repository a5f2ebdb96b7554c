"""The collector's settings a service takes once ready (common/heap.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from common import heap

pytestmark = pytest.mark.unit


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_collector")
def test_what_start_up_built_is_frozen_and_the_young_generation_widened() -> None:
    built_at_start = [[n] for n in range(1_000)]  # containers the collector tracks
    frozen_before = gc.get_freeze_count()

    heap.settle()

    assert gc.get_freeze_count() >= frozen_before + len(built_at_start)
    assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD
    assert gc.isenabled()
