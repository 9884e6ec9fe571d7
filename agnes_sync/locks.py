"""One lock per file path, so threads of this process never write the same DuckDB file at once."""

from __future__ import annotations

import threading
from pathlib import Path

_guard = threading.Lock()
_locks: dict[str, threading.RLock] = {}


def lock_for(path: Path) -> threading.RLock:
    key = str(path.resolve())
    with _guard:
        lock = _locks.get(key)
        if lock is None:
            lock = _locks[key] = threading.RLock()
        return lock
