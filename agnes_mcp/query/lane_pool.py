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
demand up to ``max_workers``; past that, or when the system will not start another,
jobs wait in order for the next free thread.
A pool is shut down at interpreter exit (waiting for running jobs, as the standard pool
does); a pool dropped earlier must be shut down by its owner.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import queue
import threading
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger("agnes.query")

# A job: its future, and the call that settles it.
_Job = tuple["Future[Any]", Callable[[], Any]]

# Run at exit before the interpreter joins its threads and tears down, as the standard
# pool's own hook is (``atexit`` where the private hook is missing).
_at_exit: Callable[..., object] = getattr(threading, "_register_atexit", atexit.register)


class NoThread(RuntimeError):
    """No thread of the pool runs, and the system would not start one (at its thread or
    memory limit): the job cannot be taken. With a thread running, a job that cannot
    have a thread of its own waits for one instead."""


class _Slot:
    """One thread's hand-over: it waits on a queue of its own for its next job (None:
    stop). Only the pool puts jobs there, one at a time: the first when it starts the
    thread, later ones when the thread is on the idle stack or takes a waiting job."""

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
        self._idle: list[_Slot] = []  # a stack: the last to go idle is on top
        self._waiting: deque[_Job] = deque()  # jobs that came when every thread was busy
        self._threads: set[threading.Thread] = set()
        self._names = itertools.count()
        self._shut = False
        # A query's DuckDB work must not be cut off mid-way by the interpreter's teardown.
        _at_exit(_shutdown, weakref.ref(self))

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
                slot = _Slot()
                slot.jobs.put(job)  # never a Thread argument: it would live as long as it
                thread = threading.Thread(
                    target=self._work,
                    args=(slot,),
                    name=f"{self._prefix}_{next(self._names)}",
                    daemon=True,
                )
                try:
                    thread.start()
                except RuntimeError as exc:  # the system gives no more threads (ulimit, pids.max)
                    if not self._threads:
                        raise NoThread(str(exc)) from None
                    self._waiting.append(job)  # a running thread takes it when it is done
                else:
                    self._threads.add(thread)
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

    def _work(self, slot: _Slot) -> None:
        try:
            if self._initializer is not None and not self._initialized(slot):
                return
            while (job := slot.jobs.get()) is not None:
                self._run(job, slot)
                del job  # an idle thread holds nothing of the jobs it ran
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _initialized(self, slot: _Slot) -> bool:
        """Run the initializer; if it fails, this thread's job fails with its error, and so
        does every waiting job when no other thread is left to run them."""
        assert self._initializer is not None
        try:
            self._initializer()
        except BaseException as exc:  # noqa: BLE001 - the jobs' callers hear it
            with self._lock:
                self._threads.discard(threading.current_thread())
                first = slot.jobs.get()  # put there when the thread was started
                failed = [first] if first is not None else []
                if not self._threads:
                    failed += self._waiting
                    self._waiting.clear()
            for future, _ in failed:
                if future.set_running_or_notify_cancel():
                    future.set_exception(exc)
            return False
        return True

    def _run(self, job: _Job, slot: _Slot) -> None:
        """Run ``job``; then line up this thread's next job (a waiting one, else go on the
        idle stack), and only then settle the job's future: a caller that reacts to the
        answer at once finds this thread idle. (The standard pool's late idling is what
        made it start more threads.)"""
        future, call = job
        del job
        if not future.set_running_or_notify_cancel():  # cancelled while it waited
            self._line_up(slot)
            return
        try:
            outcome, failed = call(), False
        except BaseException as exc:  # noqa: BLE001 - the caller's, through its future
            outcome, failed = exc, True
        del call
        self._line_up(slot)
        try:
            if failed:
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        except BaseException:  # a done-callback's: the thread, already idle, must go on
            log.exception("a callback of a finished job failed")

    def _line_up(self, slot: _Slot) -> None:
        with self._lock:
            if self._waiting:
                slot.jobs.put(self._waiting.popleft())
            elif self._shut:
                slot.jobs.put(None)
            else:
                self._idle.append(slot)


def _shutdown(pool: weakref.ref[LifoThreadPool]) -> None:
    alive = pool()
    if alive is not None:
        alive.shutdown()
