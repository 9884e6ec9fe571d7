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
        self._heap: list[tuple[float, int, Callable[[], object]]] = []
        self._live: set[int] = set()
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, seconds: float, interrupt: Callable[[], object]) -> int:
        """Call ``interrupt`` after ``seconds`` unless :meth:`release` comes first."""
        ticket = next(self._ids)
        with self._lock:
            heapq.heappush(self._heap, (time.monotonic() + seconds, ticket, interrupt))
            self._live.add(ticket)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="agnes-watchdog", daemon=True
                )
                self._thread.start()
            self._lock.notify()
        return ticket

    def release(self, ticket: int) -> bool:
        """Stop watching; False when the interrupt already fired (or is about to): the
        watched connection may still receive it, so it must not run anything else."""
        with self._lock:
            if ticket in self._live:
                self._live.discard(ticket)
                return True
            return False

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)  # released: forget it
                if not self._heap:
                    self._lock.wait()
                    continue
                deadline, ticket, interrupt = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._lock.wait(delay)
                    continue
                heapq.heappop(self._heap)
                self._live.discard(ticket)
            # Outside the lock: an interrupt may take a moment. The query may have ended and
            # closed its connection meanwhile; that must not end this thread.
            with contextlib.suppress(Exception):
                interrupt()


WATCHDOG = Watchdog()
