"""The server freezes its start-up heap, so full garbage collections stay short."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from agnes_mcp.api.admin_gate import AdminReadiness, ReadyState
from agnes_mcp.serve import freeze_startup_heap
from tests.conftest import freeze_what_lives


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """The test starts with nothing frozen; after it, the suite's own freeze
    (``conftest.freeze_what_lives``) again, not what the test froze."""
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()
        freeze_what_lives()


def _heap_freezer_done() -> bool:
    return not any(t.name == "agnes-heap-freeze" for t in threading.enumerate())


def test_start_up_objects_leave_the_collector_and_the_admin_app_joins_them(
    unfrozen: None,
) -> None:
    readiness = AdminReadiness()
    readiness.pending()
    freeze_startup_heap(readiness)
    frozen = gc.get_freeze_count()
    assert frozen > 0
    built_later = [[i] for i in range(10_000)]  # what the admin app's mount builds
    assert _collected(built_later[0]) and _collected(built_later[-1])
    readiness.ready()
    for thread in threading.enumerate():
        if thread.name == "agnes-heap-freeze":
            thread.join(timeout=10)
    assert _heap_freezer_done()
    # out of the collector's sight: frozen (a count would do, but a frozen object another
    # thread let go of meanwhile leaves the count, and the sum came out one short)
    assert not _collected(built_later[0]) and not _collected(built_later[-1])


def _collected(value: object) -> bool:
    """Whether the cyclic collector still walks ``value`` (frozen objects it does not)."""
    return any(seen is value for seen in gc.get_objects())


def test_settled_readiness_is_seen_from_a_thread() -> None:
    readiness = AdminReadiness()
    assert readiness.wait_settled(0.01) is ReadyState.ABSENT
    readiness.pending()
    assert readiness.wait_settled(0.01) is ReadyState.PENDING
    threading.Timer(0.05, readiness.failed, args=("import failed",)).start()
    assert readiness.wait_settled(10) is ReadyState.FAILED
