"""One thread that interrupts queries past their deadline.

A ``threading.Timer`` per query costs a thread start (~0.1-0.3 ms) on the hot path; here
a query only pushes its deadline on a heap and takes it off when it ends.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Callable


class Watchdog:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        # The heap holds deadlines only: a released ticket's interrupt (and the cursor it
        # holds) is let go at once; its deadline stays on the heap until the thread passes
        # it, or the heap is rebuilt from the live tickets (when mostly released ones).
        self._heap: list[tuple[float, int]] = []
        self._live: dict[int, tuple[float, Callable[[], object]]] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, seconds: float, interrupt: Callable[[], object]) -> int:
        """Call ``interrupt`` after ``seconds`` unless :meth:`release` comes first."""
        ticket = next(self._ids)
        with self._lock:
            deadline = time.monotonic() + seconds
            self._live[ticket] = (deadline, interrupt)
            if len(self._heap) > 2 * len(self._live) + 64:
                self._heap = [(d, t) for t, (d, _) in self._live.items()]
                heapq.heapify(self._heap)
            else:
                heapq.heappush(self._heap, (deadline, ticket))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="agnes-watchdog", daemon=True
                )
                self._thread.start()
            # The thread sleeps until the earliest deadline on the heap (released ones
            # included: it drops them when it wakes), so it needs waking only when this
            # deadline is now the earliest. With one timeout for all, a query started
            # after another is never that: no thread switch per query.
            if self._heap[0][1] == ticket:
                self._lock.notify()
        return ticket

    def release(self, ticket: int) -> bool:
        """Stop watching; False when the interrupt already fired (or is about to): the
        watched connection may still receive it, so it must not run anything else."""
        with self._lock:
            return self._live.pop(ticket, None) is not None

    def interrupt_all(self) -> int:
        """Interrupt every watched query now (a process that runs one caller's queries,
        whose caller went away); returns how many. Their tickets are released as fired."""
        with self._lock:
            fired = [interrupt for _, interrupt in self._live.values()]
            self._live.clear()
        for interrupt in fired:
            with contextlib.suppress(Exception):
                interrupt()
        return len(fired)

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)  # released: forget it
                if not self._heap:
                    self._lock.wait()
                    continue
                deadline, ticket = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._lock.wait(delay)
                    continue
                heapq.heappop(self._heap)
                _, interrupt = self._live.pop(ticket)
            # Outside the lock: an interrupt may take a moment. The query may have ended and
            # closed its connection meanwhile; that must not end this thread.
            with contextlib.suppress(Exception):
                interrupt()


WATCHDOG = Watchdog()
