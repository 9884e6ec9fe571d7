"""Failed sign-in attempts per client: a sliding window kept in memory."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

MAX_KEYS = 10_000  # clients remembered; the oldest are forgotten first


class RateLimiter:
    """At most ``limit`` failures per ``window_seconds`` per key (a client IP)."""

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> float | None:
        """Seconds until ``key`` may try again, or ``None`` when it may try now."""
        now = self._clock()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                return None
            self._expire(hits, now)
            if len(hits) < self.limit:
                return None
            return max(hits[0] + self.window - now, 0.001)

    def failed(self, key: str) -> None:
        """Record one failed attempt by ``key``."""
        now = self._clock()
        with self._lock:
            hits = self._hits.pop(key, None) or deque()
            self._expire(hits, now)
            hits.append(now)
            self._hits[key] = hits  # re-inserted: dict order is least recently failed first
            while len(self._hits) > MAX_KEYS:
                self._hits.pop(next(iter(self._hits)))

    def _expire(self, hits: deque[float], now: float) -> None:
        while hits and hits[0] <= now - self.window:
            hits.popleft()
