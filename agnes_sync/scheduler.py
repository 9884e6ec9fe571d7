"""Running syncs: a bounded worker pool, one sync per table at a time, due times from schedules.

The scheduler knows nothing about the system store: it is given a function that lists
the jobs (key, schedule, last start) and a function that runs one job. A slow or
failing job never blocks the others; a job already running is not started twice (a
second trigger waits for the running one instead).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from agnes_sync.schedule import Schedule

logger = logging.getLogger("agnes.scheduler")


@dataclass(frozen=True)
class Job:
    key: str
    schedule: Schedule | None
    last_started: datetime | None
    last_succeeded: datetime | None


class Scheduler:
    def __init__(
        self,
        jobs: Callable[[], list[Job]],
        run: Callable[[str, str], object],
        *,
        workers: int = 2,
        tick_seconds: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._jobs = jobs
        self._run = run
        self._clock = clock
        self._tick = tick_seconds
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="agnes-sync")
        self._running: dict[str, Future[object]] = {}
        self._again: dict[str, Future[object]] = {}  # runs to follow the one in progress
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- triggering ---------------------------------------------------------------------

    def trigger(self, key: str, reason: str = "manual", *, again: bool = False) -> Future[object]:
        """Start ``key`` now, or hand back the future of the run already in progress; with
        ``again`` (what it runs changed: the run in progress began with the old), one
        more run follows the one in progress, and its future is handed back (one such
        run at a time: later asks join it)."""
        with self._lock:
            running = self._running.get(key)
            if running is None or running.done():
                future = self._pool.submit(self._guarded, key, reason)
                self._running[key] = future
                return future
            if not again:
                return running
            follow = self._again.get(key)
            if follow is not None:
                return follow
            follow = self._again[key] = Future()
        # outside the lock: a run that ended meanwhile calls it here and now
        running.add_done_callback(lambda _: self._run_again(key, reason))
        return follow

    def _run_again(self, key: str, reason: str) -> None:
        """The run asked for while another was in progress, now that it has ended."""
        with self._lock:
            follow = self._again.pop(key)
        if not follow.set_running_or_notify_cancel():
            return
        try:
            started = self.trigger(key, reason)  # a run begun since read the change too
        except RuntimeError as exc:  # stopped meanwhile: the pool takes no more work
            follow.set_exception(exc)
            return
        started.add_done_callback(lambda done: _settle(follow, done))

    def latest(self, key: str) -> Future[object] | None:
        """The run of ``key`` asked for last: one to follow the run in progress, else the
        one in progress or the last that ended (None: never run here)."""
        with self._lock:
            return self._again.get(key) or self._running.get(key)

    def running(self) -> set[str]:
        with self._lock:
            return {k for k, f in self._running.items() if not f.done()}

    def _guarded(self, key: str, reason: str) -> object:
        try:
            return self._run(key, reason)
        except Exception:
            logger.exception("sync job %s failed unexpectedly", key)
            raise

    # --- the clock ------------------------------------------------------------------------

    def due(self, now: datetime | None = None) -> list[str]:
        """Jobs whose next run is due: never succeeded, or the schedule says so."""
        moment = now or self._clock()
        busy = self.running()
        found = []
        for job in self._jobs():
            if job.schedule is None or job.key in busy:
                continue
            if (job.last_succeeded is None and job.last_started is None) or (
                job.last_started is not None and job.schedule.next_after(job.last_started) <= moment
            ):
                found.append(job.key)
        return found

    def tick(self) -> list[str]:
        started = []
        for key in self.due():
            self.trigger(key, "schedule")
            started.append(key)
        return started

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="agnes-scheduler", daemon=True)
            self._thread.start()

    def stop(self, wait: bool = True) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._tick):
            try:
                self.tick()
            except Exception:
                logger.exception("scheduler tick failed")


def _settle(follow: Future[object], done: Future[object]) -> None:
    """``follow`` ends as ``done`` did."""
    if done.cancelled():
        follow.set_exception(CancelledError())
    elif (error := done.exception()) is not None:
        follow.set_exception(error)
    else:
        follow.set_result(done.result())
