"""A daemon thread that runs a task on a schedule: group sync, marketplace sync.

It sleeps on an :class:`~threading.Event`, so :meth:`BackgroundLoop.stop` ends it at
once (also in the middle of a wait), and one failed round never ends the loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable


class BackgroundLoop:
    def __init__(
        self,
        name: str,
        tick: Callable[[], float],
        stop: threading.Event,
        *,
        logger: logging.Logger,
        retry_seconds: float = 300.0,
    ) -> None:
        """``tick`` does whatever is due and returns the seconds until the next is due."""
        self._name = name
        self._tick = tick
        self._stop = stop
        self._logger = logger
        self._retry_seconds = retry_seconds
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
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
                self._logger.exception("scheduled %s failed", self._name)
                wait = self._retry_seconds
            if self._stop.wait(max(wait, 1.0)):
                return
