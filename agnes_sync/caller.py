"""The caller a piece of work is done for, and what stops that work when the caller gives
up (an MCP client's ``notifications/cancelled``, a client that timed out or went away).

Work started on the caller's behalf registers how to stop it (:meth:`Caller.on_cancel`):
a query watched by the rails' watchdog is interrupted, a request relayed to the server has
its connection shut, so the server sees the hang-up and stops the query there too.
:meth:`Caller.cancel` stops all of them at once, and any registered later.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

from agnes_sync.errors import AgnesError

T = TypeVar("T")


class CallCancelled(AgnesError):
    """The caller gave up on the call (cancelled it, or went away) and its work was
    stopped: no one reads this answer, but the logs and the audit trail say so."""

    code = "query_cancelled"
    status = 499  # "client closed request" (nginx's code): nobody reads it
    default_hint = "Send the call again if you still want its answer."


class Caller:
    """The work running on behalf of one call, stopped together when its caller gives up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stops: dict[Hashable, Callable[[], object]] = {}
        self.cancelled = False
        # What the caller hears now, before the work ends (see answer_now), and who tells it.
        self.early: BaseException | None = None
        self._hearers: list[Callable[[BaseException], object]] = []

    def on_cancel(self, key: Hashable, stop: Callable[[], object]) -> None:
        """Call ``stop`` when the caller gives up (at once if it already has), unless
        :meth:`discard` of ``key`` comes first."""
        with self._lock:
            if not self.cancelled:
                self._stops[key] = stop
                return
        stop()  # started after the caller gave up: stopped at once

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._stops.pop(key, None)

    def on_answer_now(self, hear: Callable[[BaseException], object]) -> None:
        """Call ``hear`` with the answer :meth:`answer_now` gives (at once if given already)."""
        with self._lock:
            if self.early is None:
                self._hearers.append(hear)
                return
            early = self.early
        hear(early)

    def answer_now(self, answer: BaseException) -> None:
        """The caller hears ``answer`` now, while the work ends on its own (a query past its
        timeout that the engine is slow to stop: its place among running queries stays
        taken until it has). Only the first answer counts."""
        with self._lock:
            if self.early is not None:
                return
            self.early = answer
            hearers, self._hearers = self._hearers, []
        for hear in hearers:
            with contextlib.suppress(Exception):  # a caller gone meanwhile hears nothing
                hear(answer)

    def cancel(self) -> int:
        """Stop the work running for this call, and any it starts from now on; returns
        how much was running."""
        with self._lock:
            self.cancelled = True
            stops, self._stops = self._stops, {}
        for stop in stops.values():
            with contextlib.suppress(Exception):  # already ended: nothing left to stop
                stop()
        return len(stops)


# The caller the current call's work runs for (None: no one can cancel it).
CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("agnes_caller", default=None)


def caller_gave_up() -> bool:
    """Whether the current call's caller cancelled it (so an interrupt came from there,
    not from a timeout)."""
    caller = CALLER.get()
    return caller is not None and caller.cancelled


@contextlib.contextmanager
def caller_within() -> Iterator[Caller]:
    """A :class:`Caller` for work started here, cancelled too when the current call's
    caller (if any) gives up."""
    caller = Caller()
    outer = CALLER.get()
    if outer is not None:
        outer.on_cancel(caller, caller.cancel)
    try:
        yield caller
    finally:
        if outer is not None:
            outer.discard(caller)


def interruptible(work: Callable[[], T]) -> T:
    """``work()``, stopped at once by Ctrl-C (SIGINT, a Jupyter kernel's interrupt) when it
    is asked for on Python's main thread (``agnes query`` in process, a notebook).

    A signal handler runs only when the main thread is back in Python, and a query working
    there (DuckDB) looks at pending signals too seldom: Ctrl-C waited for the query's end
    or its timeout. On the main thread the work runs on a thread of its own, for a
    :class:`Caller` of its own, while the main thread waits (a wait a signal ends); Ctrl-C
    cancels that caller, which stops what the work registered (the watchdog interrupts its
    queries, again until each ends), waits for the work to end, and raises
    ``KeyboardInterrupt``. Elsewhere (a server's threads, which signals never reach) the
    work runs in place, for the caller already there."""
    if threading.current_thread() is not threading.main_thread():
        return work()
    with caller_within() as caller:
        context = contextvars.copy_context()
        context.run(CALLER.set, caller)
        work_thread = _WorkThread(work, context)
        work_thread.run_and_wait(caller)
    if work_thread.failure:
        raise work_thread.failure[0]
    return work_thread.outcome[0]


# How often the main thread, waiting for the work, wakes to run a signal's handler. Ctrl-C
# sent to the process may be delivered to another of its threads (DuckDB's, the work's):
# its handler then runs only once the main thread is back in Python, and a wait with no
# timeout never comes back for it (the query ran on to its end or its timeout).
SIGNAL_POLL_SECONDS = 0.2


class _WorkThread(Generic[T]):
    """One :func:`interruptible` work on a thread of its own, waited for."""

    def __init__(self, work: Callable[[], T], context: contextvars.Context) -> None:
        self._work = work
        self._context = context
        self._lock = threading.Lock()
        self._began = False
        self._abandoned = False  # Ctrl-C came before the thread began: it must not run
        self.done = threading.Event()
        self.outcome: list[T] = []
        self.failure: list[BaseException] = []

    def _run(self) -> None:
        try:
            with self._lock:
                if self._abandoned:
                    return
                self._began = True
            self.outcome.append(self._context.run(self._work))
        except BaseException as exc:  # noqa: BLE001 - raised again on the waiting thread
            self.failure.append(exc)
        finally:
            self.done.set()

    def run_and_wait(self, caller: Caller) -> None:
        """Start the work and wait for it; at Ctrl-C (wherever it lands, thread start
        included) stop it and wait for it to end (its connection must not be used while
        it runs: a second Ctrl-C does not cut that short), then raise it."""
        try:
            threading.Thread(target=self._run, name="agnes-interruptible", daemon=True).start()
            while not self.done.wait(SIGNAL_POLL_SECONDS):
                pass
        except KeyboardInterrupt:
            caller.cancel()
            with self._lock:
                began = self._began
                self._abandoned = not began
            while began:
                try:
                    self.done.wait()
                    break
                except KeyboardInterrupt:
                    continue
            raise
