"""Sandboxes pooled by (set of tables, catalog version, converted tables, threads): a new
DuckDB costs ~11 ms (and its views read every footer), a cursor of a pooled one nothing.

A query that reads only tables of at most one row group runs in a single-threaded twin of
its sandbox: DuckDB splits a scan's work by row group, so it scans such a table (once
converted) on one thread anyway, and each statement on a multi-threaded DuckDB pays for
waking its worker threads (~0.05 ms; three statements a query: begin, the SELECT,
rollback). A table still read from several parquet files could have used two threads,
on at most 122,880 rows. A grant set queried both ways holds two sandboxes in the pool.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

from agnes_mcp.rails.file_copies import SHARED, NativeFiles
from agnes_mcp.rails.native_tables import NativeTables
from agnes_mcp.rails.sandbox import Sandbox
from agnes_mcp.rails.spill import SPILL_BYTES
from agnes_mcp.rails.tables import CatalogTable

POOL_SIZE = 16
ROW_GROUP_ROWS = 122_880  # DuckDB's row group: the unit a scan's threads split


class SandboxPool:
    """Sandboxes by (set of tables, catalog version), least recently used dropped first;
    a sandbox of an older catalog version is dropped as soon as one of a newer version
    is made (it would never be asked for again, and it holds copies of replaced files).
    With ``natives``, tables are converted to DuckDB files in the background, and once one
    is ready the sandboxes are made again (the next query of each) to read it."""

    def __init__(
        self,
        *,
        memory_limit: str,
        threads: int,
        size: int = POOL_SIZE,
        copies: NativeFiles | None = SHARED,
        natives: NativeTables | None = None,
        spill_bytes: int = SPILL_BYTES,
    ) -> None:
        self._memory = memory_limit
        self._spill = spill_bytes
        self._threads = threads
        self._size = size
        self._copies = copies
        self._natives = natives
        self._lock = threading.Lock()
        self._pool: OrderedDict[tuple[object, ...], Sandbox] = OrderedDict()

    def get(
        self,
        tables: list[CatalogTable],
        version: object,
        reads: Sequence[CatalogTable] | None = None,
    ) -> Sandbox:
        """The sandbox of ``tables`` at ``version``; ``reads``, the tables the query reads
        (None: unknown), picks the single-threaded twin when each is one row group."""
        generation = self._natives.generation if self._natives is not None else 0
        threads = self._threads if reads is None else threads_for(reads, self._threads)
        key = (version, generation, frozenset(t.id for t in tables), threads)
        with self._lock:
            sandbox = self._pool.get(key)
            if sandbox is not None and sandbox.retired:
                del self._pool[key]  # closed by its retirement; made again below
            elif sandbox is not None:
                self._pool.move_to_end(key)
                return sandbox
        sandbox = Sandbox(
            tables,
            memory_limit=self._memory,
            threads=threads,
            copies=self._copies,
            natives=self._natives,
            spill_bytes=self._spill,
        )
        dropped: list[Sandbox] = []
        with self._lock:
            existing = self._pool.get(key)
            if existing is not None and not existing.retired:
                dropped.append(sandbox)
                sandbox = existing
            else:
                for other in [k for k in self._pool if k[:2] != key[:2]]:
                    dropped.append(self._pool.pop(other))
                self._pool[key] = sandbox
                while len(self._pool) > self._size:
                    dropped.append(self._pool.popitem(last=False)[1])
        for old in dropped:
            old.close()
        return sandbox

    def convert(self, tables: Callable[[], list[CatalogTable]]) -> None:
        """Convert what ``tables()`` returns, all the tables there are, in the background
        (``tables`` runs there too; no-op without ``natives``); conversions of any other
        files are removed."""
        if self._natives is not None:
            self._natives.want(tables, only=True)

    def wait_converted(self, timeout: float) -> bool:
        """Whether the conversions queued so far ended within ``timeout`` seconds."""
        return self._natives is None or self._natives.wait_idle(timeout)

    def clear(self) -> None:
        with self._lock:
            dropped = list(self._pool.values())
            self._pool.clear()
        for sandbox in dropped:
            sandbox.close()

    def close(self) -> None:
        """Drop every sandbox and stop converting tables (removing the converted files)."""
        self.clear()
        if self._natives is not None:
            self._natives.close()


def threads_for(reads: Sequence[CatalogTable], most: int) -> int:
    """Threads for a query reading ``reads``: one when each holds at most one row group
    (of a known size), else ``most``."""
    small = all(t.rows is not None and t.rows <= ROW_GROUP_ROWS for t in reads)
    return 1 if small else most
