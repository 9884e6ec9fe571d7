"""Delivery ids already accepted, per source: a retried webhook delivery changes nothing.

Kept in memory and appended to ``state/webhooks/<source>.seen`` (one ``<unix time> <id>``
line each, flushed at once), so a restart still knows the ids of the last
``retention_hours``. The file is rewritten without the expired ids when it has grown to
twice what is kept; at most ``max_ids`` ids are kept (the oldest go first). Losing the
newest lines in a crash is harmless: the work a delivery asks for is idempotent.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from pathlib import Path

from agnes_sync import atomic


class SeenDeliveries:
    def __init__(self, path: Path, *, retention_hours: float = 48, max_ids: int = 500_000) -> None:
        self.path = path
        self.retention_seconds = retention_hours * 3600
        self.max_ids = max_ids
        self._lock = threading.Lock()
        self._ids: OrderedDict[str, float] | None = None
        self._lines = 0

    def first_time(self, delivery_id: str) -> bool:
        """Record ``delivery_id``; ``False`` if it was seen already (a retry or replay)."""
        now = time.time()
        with self._lock:
            ids = self._load(now)
            if delivery_id in ids:
                return False
            ids[delivery_id] = now
            while len(ids) > self.max_ids:
                ids.popitem(last=False)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(f"{now:.3f} {delivery_id}\n")
            self._lines += 1
            if self._lines > 2 * max(len(ids), 1000):
                self._compact(ids)
            return True

    def _load(self, now: float) -> OrderedDict[str, float]:
        if self._ids is not None:
            self._expire(self._ids, now)
            return self._ids
        ids: OrderedDict[str, float] = OrderedDict()
        lines = 0
        try:
            with self.path.open(encoding="utf-8") as source:
                for line in source:
                    lines += 1
                    at, _, delivery_id = line.rstrip("\n").partition(" ")
                    try:
                        when = float(at)
                    except ValueError:
                        continue  # a torn last line
                    if delivery_id and now - when < self.retention_seconds:
                        ids[delivery_id] = when
                        ids.move_to_end(delivery_id)
        except FileNotFoundError:
            pass
        self._ids, self._lines = ids, lines
        return ids

    def _expire(self, ids: OrderedDict[str, float], now: float) -> None:
        while ids:
            oldest, when = next(iter(ids.items()))
            if now - when < self.retention_seconds:
                return
            del ids[oldest]

    def _compact(self, ids: OrderedDict[str, float]) -> None:
        atomic.write_text(self.path, "".join(f"{at:.3f} {i}\n" for i, at in ids.items()))
        self._lines = len(ids)
