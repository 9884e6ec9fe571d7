"""Counting the bytes a query really reads from the warehouse file, and stopping it at the
cap: DuckDB has no billing cap of its own, so the estimate alone must never decide.

Each remote query runs in a DuckDB instance of its own with one thread, so all of its
reads happen on the calling thread; the kernel counts them per thread
(``/proc/self/task/<tid>/io``, ``rchar``: bytes read through ``read``/``pread``, page
cache hits included, which is what a cold scan costs). One meter thread samples the
running queries every few milliseconds and interrupts any that passed its cap; the
bytes measured are what the query is charged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SAMPLE_SECONDS = 0.005


def _io_path(tid: int) -> Path:
    return Path(f"/proc/self/task/{tid}/io")


def thread_reads(tid: int) -> int | None:
    """Bytes the thread ``tid`` has read so far, or None where the kernel does not say."""
    try:
        for line in _io_path(tid).read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def available() -> bool:
    return thread_reads(threading.get_native_id()) is not None


@dataclass
class Reading:
    """One query being metered: read by the thread running it, stopped past ``cap``."""

    key: int
    tid: int
    start: int
    cap: int
    interrupt: Callable[[], object]
    stopped: bool = False  # the meter interrupted it

    def read_so_far(self) -> int:
        now = thread_reads(self.tid)
        return max(0, now - self.start) if now is not None else 0


class ReadMeter:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._running: set[int] = set()
        self._readings: dict[int, Reading] = {}
        self._ids = 0
        self._thread: threading.Thread | None = None

    def start(self, cap: int, interrupt: Callable[[], object]) -> Reading:
        """Meter the calling thread from now on; call :meth:`stop` when the query ends."""
        tid = threading.get_native_id()
        with self._lock:
            self._ids += 1
            reading = Reading(self._ids, tid, thread_reads(tid) or 0, cap, interrupt)
            self._readings[reading.key] = reading
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="agnes-read-meter", daemon=True
                )
                self._thread.start()
            self._lock.notify()
        return reading

    def stop(self, reading: Reading) -> int:
        """The bytes the query read (measured now, on the calling thread)."""
        with self._lock:
            self._readings.pop(reading.key, None)
        return reading.read_so_far()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._readings:
                    self._lock.wait()
                readings = list(self._readings.values())
            for reading in readings:
                if reading.stopped:
                    continue
                now = thread_reads(reading.tid)
                if now is not None and now - reading.start > reading.cap:
                    reading.stopped = True
                    reading.interrupt()
            with self._lock:
                self._lock.wait(SAMPLE_SECONDS)


METER = ReadMeter()
