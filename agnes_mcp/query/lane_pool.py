"""A thread pool that hands each job to the thread that went idle last (LIFO).

:class:`concurrent.futures.ThreadPoolExecutor` puts jobs on one queue that every idle
thread waits on, and the kernel wakes the waiter that has waited longest: once a pool
has grown past one thread, one analyst's calls in a row run on its threads in turn.
Each call then starts in caches another call left cold, and a query's thread-local
state (the parse-only DuckDB of :mod:`agnes_mcp.rails.duckdb_check`) is used by turns
too. A thread that finishes a job can go idle late (query threads run at a lower
priority, so with the cores busy the next job often arrives first), and the standard
pool then starts another thread: on 2 cores a single client's small queries spread
over two or three threads.

Here the thread that went idle last takes the next job, so calls in a row stay on one
warm thread and the other threads are used only when calls overlap. Threads start on
demand up to ``max_workers``; past that, jobs wait in order for the next free thread.
"""

from __future__ import annotations

import atexit
import itertools
import queue
import threading
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

T = TypeVar("T")

# A job: its future, and the call that settles it.
_Job = tuple["Future[Any]", Callable[[], Any]]


_IDLE: Any = object()  # _next's mark: wait to be handed a job


class _Idle:
    """One idle thread's hand-over: it waits on its own queue for its next job."""

    __slots__ = ("jobs",)

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()


class LifoThreadPool(Executor):
    def __init__(
        self,
        max_workers: int,
        *,
        thread_name_prefix: str,
        initializer: Callable[[], object] | None = None,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.max_workers = max_workers
        self._prefix = thread_name_prefix
        self._initializer = initializer
        self._lock = threading.Lock()
        self._idle: list[_Idle] = []  # a stack: the last to go idle is on top
        self._waiting: deque[_Job] = deque()  # jobs that came when every thread was busy
        self._threads: set[threading.Thread] = set()
        self._names = itertools.count()
        self._shut = False
        # At exit, wait for running jobs (as the standard pool does): a query's DuckDB
        # work must not be cut off mid-way by the interpreter's teardown.
        atexit.register(_shutdown, weakref.ref(self))

    @property
    def threads(self) -> int:
        """Threads started and not yet ended."""
        with self._lock:
            return len(self._threads)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        job: _Job = (future, lambda: fn(*args, **kwargs))
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if self._idle:
                self._idle.pop().jobs.put(job)
            elif len(self._threads) < self.max_workers:
                thread = threading.Thread(
                    target=self._work,
                    args=(job,),
                    name=f"{self._prefix}_{next(self._names)}",
                    daemon=True,
                )
                self._threads.add(thread)
                thread.start()
            else:
                self._waiting.append(job)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shut = True
            idle, self._idle = self._idle, []
            if cancel_futures:
                cancelled, self._waiting = list(self._waiting), deque()
            else:
                cancelled = []
            threads = list(self._threads)
        for slot in idle:
            slot.jobs.put(None)
        for future, _ in cancelled:
            future.cancel()
        if wait:
            current = threading.current_thread()
            for thread in threads:
                if thread is not current:
                    thread.join()

    def _work(self, job: _Job | None) -> None:
        try:
            if self._initializer is not None:
                try:
                    self._initializer()
                except BaseException as exc:  # noqa: BLE001 - this thread cannot work: its job says why
                    if job is not None and job[0].set_running_or_notify_cancel():
                        job[0].set_exception(exc)
                    return
            slot = _Idle()
            while job is not None:
                future, call = job
                job = None
                if not future.set_running_or_notify_cancel():  # cancelled while it waited
                    job = self._next(slot)
                    continue
                try:
                    outcome, failed = call(), False
                except BaseException as exc:  # noqa: BLE001 - the caller's, through its future
                    outcome, failed = exc, True
                del call
                job = self._next(slot, future, outcome, failed)
                del future, outcome
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _next(
        self,
        slot: _Idle,
        future: Future[Any] | None = None,
        outcome: Any = None,
        failed: bool = False,
    ) -> _Job | None:
        """This thread's next job: a waiting one, else what it is handed once idle (None:
        the pool shut down). The finished job's ``future`` gets its ``outcome`` once the
        thread is counted idle, so a caller that reacts to the answer at once finds it
        idle (the standard pool's late idling is what made it start more threads)."""
        with self._lock:
            if self._waiting:
                job: _Job | None = self._waiting.popleft()
            elif self._shut:
                job = None
            else:
                self._idle.append(slot)
                job = _IDLE
        if future is not None:
            if failed:
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        return slot.jobs.get() if job is _IDLE else job


def _shutdown(pool: weakref.ref[LifoThreadPool]) -> None:
    alive = pool()
    if alive is not None:
        alive.shutdown()
