"""Tables kept in DuckDB's own storage format, which a server's sandboxes attach read-only.

A GROUP BY over parquet spends most of its time decoding pages; over DuckDB's own
storage it reads compressed column segments directly (the demo's orders at full scale:
2.6 ms instead of 4.8 ms over the parquet files, the same answer). So once a table's
files are known, a background thread writes one DuckDB file per table from them (the
same ``read_parquet`` the parquet view runs, read by trusted code), and sandboxes made
after that attach it ``READ_ONLY`` instead of reading the parquet files. Until it is
ready, or past the byte budget, or if the conversion fails, the table is read from its
parquet files as before: a query never waits for a conversion.

A converted file is keyed by the device, inode, size and modification time of every
file of the table, so a table a sync replaced is converted again; it is written under
a temporary name and renamed, and never changed afterwards. The files live in a private
folder of the system's temporary folder (``agnes-tables-<random>``, mode 0700), named by
a counter: neither the folder nor the file names say anything about the server or the
table, and each file holds exactly one table (``t``). A query may read the file back
(DuckDB allows the paths it attached), which gives it the rows of a table it was
granted and nothing more. Folder and files are removed when the process closes them, or,
after a kill, by the next process that makes such a folder (:mod:`held_folders`).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from agnes_mcp.rails.held_folders import HeldFolder
from agnes_mcp.rails.table_views import CONVERTED_TABLE, native_select, same_schema
from agnes_mcp.rails.tables import CatalogTable
from agnes_sync.attach_host import Host

Key = tuple[tuple[int, int, int, int], ...]
Tables = list[CatalogTable] | Callable[[], list[CatalogTable]]  # a list, or what reads one
log = logging.getLogger("agnes.rails")

INTERRUPT_EVERY = 0.05  # seconds between two interrupts while close waits for the worker
# A table whose parquet files hold less than this is written with small blocks: with
# DuckDB's default (256 KiB) a file of even a few rows takes ~0.5 MB, with 16 KiB ~45 KB,
# and a query reads either as fast (the demo's 7-row products: 0.41 ms both, 0.54 ms over
# its parquet file).
SMALL_TABLE_BYTES = 1024**2
SMALL_BLOCK_BYTES = 16 * 1024


@dataclass(frozen=True)
class _Built:
    path: str
    size: int


class NativeTables:
    """Tables converted to DuckDB files in the background, within ``max_bytes`` of disk
    (least recently used removed first); tables whose files hold fewer than ``min_bytes``
    are not converted. Small tables are worth converting too: a query on one costs ~0.1 ms
    of setting up a parquet scan less, and writing it ~4 ms once."""

    def __init__(self, max_bytes: int, *, min_bytes: int = 0, memory_limit: str = "1GB") -> None:
        self.max_bytes = max_bytes
        self.min_bytes = min_bytes  # smaller tables stay parquet
        self._memory_limit = memory_limit
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._built: OrderedDict[Key, _Built] = OrderedDict()
        self._built_bytes = 0  # of the files in _built, kept as they come and go
        self._waiting: set[Key] = set()  # asked for by path(), queued
        self._refused: set[Key] = set()  # too large or unreadable: not tried again
        self._jobs: queue.SimpleQueue[tuple[Tables, bool] | None] = queue.SimpleQueue()
        self._queued = 0  # jobs not finished yet
        self._worker: threading.Thread | None = None
        self._converting: duckdb.DuckDBPyConnection | None = None
        self._host = Host(memory_limit=memory_limit)  # the worker's, for _convert
        self._folder: Path | None = None
        self._names = itertools.count()
        self._closed = False
        # Bumped whenever a table is converted (pooled sandboxes are then made again, by
        # their next query): at once for a table of SMALL_TABLE_BYTES or more, and for
        # small ones once their job ends, so a catalog of many small tables does not have
        # each query during its conversion build a new sandbox.
        self.generation = 0
        self._unannounced = False  # small tables converted since the last bump
        self._cleanup: Callable[[], object] | None = None

    def path(self, table: CatalogTable) -> str | None:
        """The converted file of ``table`` if it is ready; else None, and its conversion
        is queued (once)."""
        if not table.files or self.max_bytes <= 0:
            return None
        try:
            key = _key(table.files)
        except OSError:
            return None  # the parquet way refuses the table with its own message
        with self._lock:
            built = self._built.get(key)
            if built is not None:
                self._built.move_to_end(key)
                return built.path
            if key in self._waiting or key in self._refused:
                return None
            if sum(k[2] for k in key) < self.min_bytes:
                return None  # small: read from parquet, never converted
            self._waiting.add(key)
        self.want([table])
        return None

    def want(self, tables: Tables, *, only: bool = False) -> None:
        """Queue the conversion of ``tables`` (those with files, not converted yet): the
        worker reads their files' identities, and calls ``tables`` when it is a function
        (reading a catalog), so the caller pays nothing. ``only``: these are all the tables
        there are (a new catalog): conversions of any other files (replaced by a sync, or
        of a table gone) are removed once these are done."""
        if not callable(tables) and not only and not self._wanted(tables):
            return  # nothing to convert: no job, no thread
        with self._lock:
            if self._closed or self.max_bytes <= 0:
                return
            self._queued += 1
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._work, name="agnes-native-tables", daemon=True
                )
                self._worker.start()
        self._jobs.put((tables, only))

    def _wanted(self, tables: list[CatalogTable]) -> list[CatalogTable]:
        return [t for t in tables if t.files and not _small(t, self.min_bytes)]

    def wait_idle(self, timeout: float) -> bool:
        """Whether every queued conversion ended within ``timeout`` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self._queued == 0, timeout)

    @property
    def files(self) -> int:
        return len(self._built)

    @property
    def bytes(self) -> int:
        with self._lock:
            return self._built_bytes

    def close(self) -> None:
        """Stop converting (interrupting a conversion under way) and remove every
        converted file; sandboxes that attached one keep reading it (an open file
        outlives its name)."""
        with self._lock:
            self._closed = True
            worker, self._worker = self._worker, None
            self._built.clear()
            self._built_bytes = 0
        if worker is not None:
            self._jobs.put(None)
            # DuckDB interrupts only a statement that is running: one sent between the
            # worker taking a table and its statement starting is lost. So it is sent again
            # until the worker has ended (a conversion ends at its first interrupt).
            while worker.is_alive():
                self._interrupt()
                worker.join(INTERRUPT_EVERY)
        self._host.close()
        if self._cleanup is not None:
            self._cleanup()

    def _interrupt(self) -> None:
        with self._lock:
            converting = self._converting
        if converting is not None:
            with contextlib.suppress(duckdb.Error):  # it may have ended (and closed) since
                converting.interrupt()

    # --- the worker ------------------------------------------------------------------------

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            source, only = job
            try:
                tables = self._wanted(source() if callable(source) else source)
                keys = [self._one(table) for table in tables if not self._closed]
                if only and not self._closed:
                    self._keep_only({k for k in keys if k is not None})
            except Exception:  # the worker outlives anything: queries read parquet meanwhile
                log.exception("converting tables failed")
            finally:
                with self._changed:
                    if self._unannounced:
                        self.generation += 1
                        self._unannounced = False
                    self._queued -= 1
                    self._changed.notify_all()

    def _keep_only(self, keys: set[Key]) -> None:
        with self._lock:
            gone = [k for k in self._built if k not in keys]
            removed = [self._built.pop(k) for k in gone]
            self._built_bytes -= sum(old.size for old in removed)
            self._refused &= keys
        for old in removed:  # a sandbox that attached one keeps reading it
            Path(old.path).unlink(missing_ok=True)

    def _one(self, table: CatalogTable) -> Key | None:
        try:
            key = _key(table.files)
        except OSError:
            return None
        with self._lock:
            if key in self._built or key in self._refused:
                self._waiting.discard(key)
                return key
            size = sum(k[2] for k in key)
            too_large = size > self.max_bytes or size < self.min_bytes
        built: _Built | None = None
        if not too_large:
            try:
                built = self._convert(table, size)
            except (OSError, duckdb.Error) as exc:  # unreadable, disk full, closed meanwhile
                log.info("table %s not converted: %s", table.id, type(exc).__name__)
        evicted: list[_Built] = []
        with self._changed:
            self._waiting.discard(key)
            if built is None or self._closed or built.size > self.max_bytes:
                self._refused.add(key)
                if built is not None:
                    evicted.append(built)
            else:
                self._built[key] = built
                self._built_bytes += built.size
                while self._built_bytes > self.max_bytes:
                    evicted.append(self._built.popitem(last=False)[1])
                    self._built_bytes -= evicted[-1].size
                if size < SMALL_TABLE_BYTES:
                    self._unannounced = True
                else:
                    self.generation += 1
                    self._unannounced = False
        for old in evicted:
            Path(old.path).unlink(missing_ok=True)
        return key

    def _convert(self, table: CatalogTable, size: int) -> _Built:
        """Write ``table``'s rows into a new DuckDB file, attached for the moment to the
        worker's in-memory DuckDB (:class:`~agnes_sync.attach_host.Host`: opening each file
        as a DuckDB of its own cost ~10 ms a table, more than converting a small one).
        ``size``: the bytes of its parquet files (a small table gets small blocks)."""
        folder = self._private_folder()
        number = next(self._names)
        building, target = folder / f"{number}.building", folder / f"{number}.duckdb"
        files = list(table.files)
        try:
            block_size = SMALL_BLOCK_BYTES if size < SMALL_TABLE_BYTES else None
            with self._host.attached(building, block_size=block_size) as con:
                with self._lock:
                    self._converting = con
                try:
                    select = native_select(files, by_name=not same_schema(con, files))
                    con.execute(f"CREATE TABLE {CONVERTED_TABLE} AS {select}")
                finally:
                    with self._lock:
                        self._converting = None
        except BaseException:
            for leftover in folder.glob(f"{number}.building*"):
                leftover.unlink(missing_ok=True)
            raise
        building.replace(target)
        return _Built(str(target), target.stat().st_size)

    def _private_folder(self) -> Path:
        if self._folder is None:
            held = HeldFolder("agnes-tables-")  # mode 0700; a killed process's is swept
            self._folder = held.path
            self._cleanup = weakref.finalize(self, held.remove)
        return self._folder


def _key(files: tuple[str, ...]) -> Key:
    found = []
    for path in files:
        stat = Path(path).stat()
        found.append((stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(found)


def _small(table: CatalogTable, min_bytes: int) -> bool:
    """Known (from the catalog) to be smaller than ``min_bytes``."""
    return table.size_bytes is not None and table.size_bytes < min_bytes
