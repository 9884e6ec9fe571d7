"""The query lane's thread pool: the thread that went idle last takes the next job, threads
start on demand up to the limit, later jobs wait their turn, and errors, cancellations
and shutdown behave as ``concurrent.futures`` promises."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import pytest

from agnes_mcp.query import concurrency
from agnes_mcp.query.concurrency import TooManyQueries
from agnes_mcp.query.lane_pool import LifoThreadPool, NoThread

WAIT = 30  # seconds: a bound on waiting for an event that must come, never a pace


MakePool = Callable[..., LifoThreadPool]


@pytest.fixture
def make_pool() -> Iterator[MakePool]:
    """Pools of the given size (and options), each shut down after the test."""
    made: list[LifoThreadPool] = []

    def make(max_workers: int, **options: Any) -> LifoThreadPool:
        pool = LifoThreadPool(max_workers, thread_name_prefix="test-lane", **options)
        made.append(pool)
        return pool

    yield make
    for pool in made:
        pool.shutdown()


@pytest.fixture
def pool(make_pool: MakePool) -> LifoThreadPool:
    return make_pool(4)


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
    """``count`` jobs submitted at once, each held until the gate opens; returns once all
    of them run."""
    started = [threading.Event() for _ in range(count)]
    gate = threading.Event()

    def held(mark: threading.Event) -> int:
        mark.set()
        assert gate.wait(WAIT)
        return threading.get_ident()

    holding = Held(started, gate, [pool.submit(held, mark) for mark in started])
    assert holding.running()
    return holding


def test_calls_in_a_row_stay_on_the_thread_that_went_idle_last(pool: LifoThreadPool) -> None:
    held = _hold(pool, 3)
    assert pool.threads == 3
    held.gate.set()
    assert len(held.threads()) == 3

    in_a_row = [pool.submit(threading.get_ident).result(WAIT) for _ in range(30)]

    # The standard pool hands each job to the thread that has waited longest: the three
    # threads in turn. Here one thread, already warm, takes them all; none is started.
    assert len(set(in_a_row)) == 1
    assert in_a_row[0] in held.threads()
    assert pool.threads == 3


def test_threads_start_up_to_the_limit_and_later_jobs_wait_their_turn(make_pool: MakePool) -> None:
    pool = make_pool(2)
    held = _hold(pool, 2)
    later = threading.Event()
    first = pool.submit(later.set)
    second = pool.submit(threading.get_ident)
    assert pool.threads == 2  # the limit: no third thread
    assert not later.is_set()  # both threads are held, so the later jobs wait
    held.gate.set()
    assert first.result(WAIT) is None and later.is_set()
    assert second.result(WAIT) in held.threads()
    assert pool.threads == 2


def test_an_error_reaches_the_caller_and_the_thread_goes_on(pool: LifoThreadPool) -> None:
    def fails() -> None:
        raise ValueError("bad input")

    failed = pool.submit(fails)
    with pytest.raises(ValueError, match="bad input"):
        failed.result(WAIT)
    assert pool.submit(lambda: 6 * 7).result(WAIT) == 42
    assert pool.threads == 1


def test_a_job_cancelled_while_it_waits_never_runs(make_pool: MakePool) -> None:
    pool = make_pool(1)
    held = _hold(pool, 1)
    ran = threading.Event()
    waiting = pool.submit(ran.set)
    assert waiting.cancel()
    after = pool.submit(lambda: "next")
    held.gate.set()
    assert after.result(WAIT) == "next"  # the job queued behind it ran...
    assert waiting.cancelled() and not ran.is_set()  # ...and the cancelled one did not


def test_shutdown_ends_the_threads_and_refuses_new_jobs() -> None:
    pool = LifoThreadPool(3, thread_name_prefix="test-lane")
    held = _hold(pool, 2)
    held.gate.set()
    assert len(held.threads()) == 2
    pool.shutdown(wait=True)
    assert pool.threads == 0
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(lambda: None)


def test_shutdown_can_cancel_the_jobs_that_wait() -> None:
    pool = LifoThreadPool(1, thread_name_prefix="test-lane")
    held = _hold(pool, 1)
    waiting = pool.submit(lambda: "never")
    opener = threading.Thread(target=held.gate.set)
    pool.shutdown(wait=False, cancel_futures=True)
    assert waiting.cancelled()
    opener.start()
    opener.join()
    pool.shutdown(wait=True)
    assert pool.threads == 0


def test_the_initializer_runs_once_in_each_thread(make_pool: MakePool) -> None:
    seen: list[int] = []
    pool = make_pool(3, initializer=lambda: seen.append(threading.get_ident()))
    held = _hold(pool, 3)
    held.gate.set()
    for _ in range(10):
        pool.submit(lambda: None).result(WAIT)
    assert sorted(seen) == sorted(held.threads())


def test_a_failing_initializer_fails_the_job_instead_of_losing_it(make_pool: MakePool) -> None:
    def broken() -> None:
        raise OSError("no such thing")

    pool = make_pool(2, initializer=broken)
    with pytest.raises(OSError, match="no such thing"):
        pool.submit(lambda: "lost?").result(WAIT)
    assert pool.threads == 0


def test_names_threads_with_the_prefix(pool: LifoThreadPool) -> None:
    name = pool.submit(lambda: threading.current_thread().name).result(WAIT)
    assert name.startswith("test-lane_")


def test_jobs_that_wait_run_in_the_order_they_came(make_pool: MakePool) -> None:
    pool = make_pool(1)
    held = _hold(pool, 1)
    ran: list[str] = []
    waiting = [pool.submit(ran.append, name) for name in ("first", "second", "third")]
    held.gate.set()
    for future in waiting:
        future.result(WAIT)
    assert ran == ["first", "second", "third"]


def test_a_caller_that_reacts_to_an_answer_at_once_finds_the_thread_idle(
    make_pool: MakePool,
) -> None:
    """The thread is back on the idle stack before the answer is settled: a job submitted
    from the answer's own callback goes to that thread, and no second thread starts."""
    pool = make_pool(4)
    follow_up: list[Future[int]] = []
    held = _hold(pool, 1)  # the callback is in place before the job ends
    held.futures[0].add_done_callback(lambda _: follow_up.append(pool.submit(threading.get_ident)))
    held.gate.set()
    assert held.threads() == {follow_up[0].result(WAIT)}
    assert pool.threads == 1


def test_a_failing_initializer_fails_the_jobs_waiting_behind_it(make_pool: MakePool) -> None:
    release = threading.Event()

    def broken_once_released() -> None:
        assert release.wait(WAIT)
        raise OSError("no such thing")

    pool = make_pool(1, initializer=broken_once_released)
    first = pool.submit(lambda: "first")  # its thread is in the initializer
    behind = pool.submit(lambda: "behind")  # the limit is 1: it waits
    release.set()
    for future in (first, behind):
        with pytest.raises(OSError, match="no such thing"):
            future.result(WAIT)
    assert pool.threads == 0


def test_a_thread_that_cannot_start_is_not_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = LifoThreadPool(1, thread_name_prefix="test-lane")

    def cannot_start(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    with monkeypatch.context() as patched:
        patched.setattr(threading.Thread, "start", cannot_start)
        with pytest.raises(NoThread, match="can't start new thread"):
            pool.submit(lambda: None)
    assert pool.threads == 0
    assert pool.submit(lambda: "started").result(WAIT) == "started"  # the limit is intact
    pool.shutdown(wait=True)  # and nothing unstarted to join
    assert pool.threads == 0


def test_a_failing_callback_leaves_the_thread_working(pool: LifoThreadPool) -> None:
    def escapes(_: Future[int]) -> None:
        raise SystemExit("not caught by Future")

    held = _hold(pool, 1)  # the callback runs in the thread, when the job ends
    held.futures[0].add_done_callback(escapes)
    held.gate.set()
    ran_on = held.threads()
    assert pool.submit(threading.get_ident).result(WAIT) in ran_on
    assert pool.threads == 1


def test_an_idle_thread_keeps_nothing_of_the_jobs_it_ran(pool: LifoThreadPool) -> None:
    """A job's argument and answer (a request, a result's rows) are freed once the caller
    drops them, though the thread that ran it lives on, idle. This is a new thread's
    first job, and the last it ran."""

    class Payload:
        pass

    freed = {"argument": threading.Event(), "answer": threading.Event()}

    def job(given: Payload) -> Payload:
        answer = Payload()
        weakref.finalize(answer, freed["answer"].set)
        return answer

    argument = Payload()
    weakref.finalize(argument, freed["argument"].set)
    future = pool.submit(job, argument)
    assert isinstance(future.result(WAIT), Payload)
    del argument, future
    assert freed["argument"].wait(WAIT), "the idle thread still holds the job's argument"
    assert freed["answer"].wait(WAIT), "the idle thread still holds the job's answer"
    assert pool.threads == 1


def _no_new_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The system refuses to start another thread (its thread or memory limit), as
    ``threading`` says it: RuntimeError("can't start new thread")."""

    def refused(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refused)


def test_a_job_no_thread_can_start_for_waits_for_a_running_one(
    make_pool: MakePool, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = make_pool(4)
    held = _hold(pool, 1)
    with monkeypatch.context() as patched:
        _no_new_threads(patched)
        later = pool.submit(threading.get_ident)  # was: the RuntimeError, to the caller
    assert pool.threads == 1 and not later.done()
    held.gate.set()
    assert later.result(WAIT) in held.threads()


@pytest.mark.anyio
async def test_the_query_lane_refuses_typed_when_no_thread_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lane = LifoThreadPool(2, thread_name_prefix="test-lane")
    monkeypatch.setattr(concurrency, "_LANE", lane)
    _no_new_threads(monkeypatch)
    with pytest.raises(TooManyQueries) as refused:
        await concurrency.in_query_lane(threading.get_ident)
    assert refused.value.code == "too_many_queries" and refused.value.status == 429
    assert refused.value.details == {"retry_after_seconds": concurrency.NO_THREAD_RETRY_SECONDS}
    assert "threads" in refused.value.message
