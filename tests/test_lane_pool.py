"""The query lane's thread pool: the thread that went idle last takes the next job, threads
start on demand up to the limit, later jobs wait their turn, and errors, cancellations
and shutdown behave as ``concurrent.futures`` promises."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass

import pytest

from agnes_mcp.query.lane_pool import LifoThreadPool

WAIT = 30  # seconds: a bound on waiting for an event that must come, never a pace


@pytest.fixture
def pool() -> Iterator[LifoThreadPool]:
    made = LifoThreadPool(4, thread_name_prefix="test-lane")
    yield made
    made.shutdown()


@dataclass
class Held:
    """Jobs held in their threads until ``gate`` opens; each answers its thread's id."""

    started: list[threading.Event]
    gate: threading.Event
    futures: list[Future[int]]

    def running(self) -> bool:
        return all(mark.wait(WAIT) for mark in self.started)

    def threads(self) -> set[int]:
        return {f.result(WAIT) for f in self.futures}


def _hold(pool: LifoThreadPool, count: int) -> Held:
    """``count`` jobs submitted at once, each held until the gate opens."""
    started = [threading.Event() for _ in range(count)]
    gate = threading.Event()

    def held(mark: threading.Event) -> int:
        mark.set()
        assert gate.wait(WAIT)
        return threading.get_ident()

    return Held(started, gate, [pool.submit(held, mark) for mark in started])


def test_calls_in_a_row_stay_on_the_thread_that_went_idle_last(pool: LifoThreadPool) -> None:
    held = _hold(pool, 3)
    assert held.running()
    assert pool.threads == 3
    held.gate.set()
    assert len(held.threads()) == 3

    in_a_row = [pool.submit(threading.get_ident).result(WAIT) for _ in range(30)]

    # The standard pool hands each job to the thread that has waited longest: the three
    # threads in turn. Here one thread, already warm, takes them all; none is started.
    assert len(set(in_a_row)) == 1
    assert in_a_row[0] in held.threads()
    assert pool.threads == 3


def test_threads_start_up_to_the_limit_and_later_jobs_wait_their_turn() -> None:
    pool = LifoThreadPool(2, thread_name_prefix="test-lane")
    try:
        held = _hold(pool, 2)
        assert held.running()
        later = threading.Event()
        first = pool.submit(later.set)
        second = pool.submit(threading.get_ident)
        assert pool.threads == 2  # the limit: no third thread
        assert not later.is_set()  # both threads are held, so the later jobs wait
        held.gate.set()
        assert first.result(WAIT) is None and later.is_set()
        assert second.result(WAIT) in held.threads()
        assert pool.threads == 2
    finally:
        pool.shutdown()


def test_an_error_reaches_the_caller_and_the_thread_goes_on(pool: LifoThreadPool) -> None:
    def fails() -> None:
        raise ValueError("bad input")

    failed = pool.submit(fails)
    with pytest.raises(ValueError, match="bad input"):
        failed.result(WAIT)
    assert pool.submit(lambda: 6 * 7).result(WAIT) == 42
    assert pool.threads == 1


def test_a_job_cancelled_while_it_waits_never_runs() -> None:
    pool = LifoThreadPool(1, thread_name_prefix="test-lane")
    try:
        held = _hold(pool, 1)
        assert held.running()
        ran = threading.Event()
        waiting = pool.submit(ran.set)
        assert waiting.cancel()
        after = pool.submit(lambda: "next")
        held.gate.set()
        assert after.result(WAIT) == "next"  # the job queued behind it ran...
        assert waiting.cancelled() and not ran.is_set()  # ...and the cancelled one did not
    finally:
        pool.shutdown()


def test_shutdown_ends_the_threads_and_refuses_new_jobs() -> None:
    pool = LifoThreadPool(3, thread_name_prefix="test-lane")
    held = _hold(pool, 2)
    assert held.running()
    held.gate.set()
    assert len(held.threads()) == 2
    pool.shutdown(wait=True)
    assert pool.threads == 0
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(lambda: None)


def test_shutdown_can_cancel_the_jobs_that_wait() -> None:
    pool = LifoThreadPool(1, thread_name_prefix="test-lane")
    held = _hold(pool, 1)
    assert held.running()
    waiting = pool.submit(lambda: "never")
    opener = threading.Thread(target=held.gate.set)
    pool.shutdown(wait=False, cancel_futures=True)
    assert waiting.cancelled()
    opener.start()
    opener.join()
    pool.shutdown(wait=True)
    assert pool.threads == 0


def test_the_initializer_runs_once_in_each_thread() -> None:
    seen: list[int] = []
    pool = LifoThreadPool(
        3, thread_name_prefix="test-lane", initializer=lambda: seen.append(threading.get_ident())
    )
    try:
        held = _hold(pool, 3)
        assert held.running()
        held.gate.set()
        for _ in range(10):
            pool.submit(lambda: None).result(WAIT)
        assert sorted(seen) == sorted(held.threads())
    finally:
        pool.shutdown()


def test_a_failing_initializer_fails_the_job_instead_of_losing_it() -> None:
    def broken() -> None:
        raise OSError("no such thing")

    pool = LifoThreadPool(2, thread_name_prefix="test-lane", initializer=broken)
    try:
        with pytest.raises(OSError, match="no such thing"):
            pool.submit(lambda: "lost?").result(WAIT)
    finally:
        pool.shutdown()
    assert pool.threads == 0


def test_names_threads_with_the_prefix(pool: LifoThreadPool) -> None:
    name = pool.submit(lambda: threading.current_thread().name).result(WAIT)
    assert name.startswith("test-lane_")
