"""One thread that interrupts queries past their deadline, and what interrupts them when
their caller gives up.

A ``threading.Timer`` per query costs a thread start (~0.1-0.3 ms) on the hot path; here
a query only pushes its deadline on a heap and takes it off when it ends.

A query runs on a thread of its own while the call that asked for it waits; when that
call is cancelled (an MCP client's ``notifications/cancelled``, a client that timed out
or went away), the thread would run on to the timeout, holding a core and one of the
caller's query places. A :class:`~agnes_sync.caller.Caller` in
:data:`~agnes_sync.caller.CALLER` (set for each call by the query lane) collects the
queries watched on its behalf, and :meth:`~agnes_sync.caller.Caller.cancel` interrupts them
at once, and any it starts later.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterable

from agnes_sync.caller import CALLER

# A fired interrupt is sent again this often until its query is released: DuckDB drops an
# interrupt that arrives before the statement starts (a query cancelled the moment it was
# watched), and a query past its deadline must not outlive it on such luck.
REPEAT_SECONDS = 0.05

# How long past its deadline a query that has not stopped (DuckDB stops between batches of
# rows; a function slow on every row holds a batch for seconds) may keep its caller
# waiting: then its ``overdue`` is called once (the caller hears the timeout while the
# query stops on its own, its place among running queries still taken).
OVERDUE_SECONDS = 1.0


class Watchdog:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        # The heap holds deadlines only: a released ticket's interrupt (and the cursor it
        # holds) is let go at once; its deadline stays on the heap until the thread passes
        # it, or the heap is rebuilt from the live tickets (when mostly released ones).
        self._heap: list[tuple[float, int]] = []
        self._live: dict[int, tuple[float, Callable[[], object]]] = {}
        # Fired and not released yet: interrupted every REPEAT_SECONDS until released.
        self._stopping: dict[int, Callable[[], object]] = {}
        # Being interrupted right now, outside the lock: release waits for those to return,
        # since the connection refuses any other call (its close) while one is inside it.
        self._firing: set[int] = set()
        # Told when a query outlives its deadline by OVERDUE_SECONDS, and by when that is.
        self._on_overdue: dict[int, Callable[[], object]] = {}
        self._overdue_at: dict[int, float] = {}
        self._next_repeat = 0.0
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        # Set once the server stops: every watched query is interrupted, and any watched
        # from then on at once (see stop_all).
        self.stopping = False

    def watch(
        self,
        seconds: float,
        interrupt: Callable[[], object],
        overdue: Callable[[], object] | None = None,
    ) -> int:
        """Call ``interrupt`` after ``seconds`` (and again every :data:`REPEAT_SECONDS`)
        until :meth:`release`; and ``overdue`` once if that is not
        :data:`OVERDUE_SECONDS` after the deadline."""
        ticket = next(self._ids)
        with self._lock:
            deadline = time.monotonic() + seconds
            self._live[ticket] = (deadline, interrupt)
            if overdue is not None:
                self._on_overdue[ticket] = overdue
            if len(self._heap) > 2 * len(self._live) + 64:
                self._heap = [(d, t) for t, (d, _) in self._live.items()]
                heapq.heapify(self._heap)
            else:
                heapq.heappush(self._heap, (deadline, ticket))
            self._start()
            # The thread sleeps until the earliest deadline on the heap (released ones
            # included: it drops them when it wakes), so it needs waking only when this
            # deadline is now the earliest. With one timeout for all, a query started
            # after another is never that: no thread switch per query.
            if self._heap[0][1] == ticket:
                self._lock.notify_all()
        caller = CALLER.get()
        if caller is not None:
            caller.on_cancel((self, ticket), lambda: self.interrupt([ticket]))
        if self.stopping:
            self.interrupt([ticket])
        return ticket

    def release(self, ticket: int) -> bool:
        """Stop watching; False when the interrupt already fired: the watched connection
        may still receive it, so it must not run anything else."""
        caller = CALLER.get()
        if caller is not None:
            caller.discard((self, ticket))
        with self._lock:
            self._on_overdue.pop(ticket, None)
            self._overdue_at.pop(ticket, None)
            while ticket in self._firing:  # an interrupt is inside the connection now
                self._lock.wait()
            if self._stopping.pop(ticket, None) is not None:
                return False
            return self._live.pop(ticket, None) is not None

    def interrupt_all(self) -> int:
        """Interrupt every watched query now (a process that runs one caller's queries,
        whose caller went away); returns how many."""
        with self._lock:
            tickets = list(self._live)
        return self.interrupt(tickets)

    def stop_all(self) -> int:
        """The server is stopping: interrupt every watched query now, and every query
        watched from now on, so the stop is not held until its grace runs out; returns
        how many were running. Only a process serving one server calls it."""
        self.stopping = True
        return self.interrupt_all()

    def interrupt(self, tickets: Iterable[int]) -> int:
        """Interrupt the watched queries of ``tickets`` now, and again until each is
        released; returns how many were watched."""
        with self._lock:
            fired = [t for t in tickets if t in self._live]
            for ticket in fired:
                self._stopping[ticket] = self._live.pop(ticket)[1]
                self._on_overdue.pop(ticket, None)  # its caller gave up, or the server stops
            if fired:
                self._next_repeat = 0.0  # at once
                self._start()
                self._lock.notify_all()
        return len(fired)

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="agnes-watchdog", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                while self._heap and (
                    self._heap[0][1] not in self._live or self._heap[0][0] <= now
                ):
                    _, ticket = heapq.heappop(self._heap)
                    entry = self._live.pop(ticket, None)  # None: released, or fired early
                    if entry is not None:
                        self._stopping[ticket] = entry[1]
                        self._next_repeat = 0.0
                        if ticket in self._on_overdue:
                            self._overdue_at[ticket] = entry[0] + OVERDUE_SECONDS
                late = [t for t, at in self._overdue_at.items() if at <= now]
                told = [self._on_overdue.pop(t) for t in late if t in self._on_overdue]
                for ticket in late:
                    del self._overdue_at[ticket]
                if not told and (not self._stopping or self._next_repeat > now):
                    waits = [self._heap[0][0]] if self._heap else []
                    if self._stopping:
                        waits.append(self._next_repeat)
                    waits.extend(self._overdue_at.values())
                    self._lock.wait(min(waits) - now if waits else None)
                    continue
                fire = list(self._stopping.items()) if self._next_repeat <= now else []
                self._firing.update(ticket for ticket, _ in fire)
                if fire:
                    self._next_repeat = now + REPEAT_SECONDS
            for tell in told:  # outside the lock, as interrupts are
                with contextlib.suppress(Exception):  # a caller gone meanwhile hears nothing
                    tell()
            # Outside the lock: an interrupt may take a moment. The query may have ended and
            # closed its connection meanwhile; that must not end this thread, and such a
            # ticket is not interrupted again.
            for ticket, interrupt in fire:
                try:
                    interrupt()
                except Exception:  # noqa: BLE001 - closed: nothing left to stop
                    with self._lock:
                        self._stopping.pop(ticket, None)
                finally:
                    with self._lock:
                        self._firing.discard(ticket)
                        self._lock.notify_all()


WATCHDOG = Watchdog()
