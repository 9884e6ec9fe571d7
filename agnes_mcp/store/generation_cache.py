"""A bounded, thread-safe LRU map whose entries hold while the system store is unchanged.

Every write to the store bumps its generation (:meth:`SystemStore.transaction`); an
entry remembers the generation read *before* its value was loaded, so a write that
lands while a value is loading makes that value stale at once. Tokens, web sessions,
OAuth grants, grants and the plugin feed cache what they read from the store this way.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from agnes_mcp.store.database import SystemStore

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class GenerationCache(Generic[K, V]):
    def __init__(self, store: SystemStore, max_entries: int) -> None:
        self._store = store
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[K, tuple[int, V]] = OrderedDict()

    def get(self, key: K, load: Callable[[], V], *, keep: Callable[[V], bool] | None = None) -> V:
        """The cached value of ``key`` if the store has not changed since it was read, else
        ``load()`` (kept unless ``keep`` says no, e.g. for unknown tokens, so guessing
        cannot evict real entries)."""
        generation = self._store.generation
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] == generation:
                self._entries.move_to_end(key)
                return hit[1]
        value = load()
        if keep is None or keep(value):
            with self._lock:
                self._entries[key] = (generation, value)
                self._entries.move_to_end(key)
                while len(self._entries) > self._max:
                    self._entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
