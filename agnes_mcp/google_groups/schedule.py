"""The thread that re-reads groups on a schedule. It sleeps on an :class:`Event`, so
:meth:`GroupSyncSchedule.stop` ends it at once (also in the middle of a retry wait)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger("agnes.group_sync")


class GroupSyncSchedule:
    def __init__(self, tick: Callable[[], float], stop: threading.Event) -> None:
        """``tick`` syncs whoever is due and returns the seconds until the next is due."""
        self._tick = tick
        self._stop = stop
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="agnes-group-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self._tick()
            except Exception:  # the schedule outlives one bad round; the next one retries
                logger.exception("scheduled group sync failed")
                wait = 300.0
            if self._stop.wait(max(wait, 1.0)):
                return
