"""The extract's record of a Jira source's shards: per table one view, its ``_files`` and
its ``_meta`` row, written in one transaction (the extract contract: the orchestrator
needs no other wiring).

A shard is never changed in place: each rewrite is a new file
(``created_month=2026-01/part-<time>-<random>.parquet``), and the record switching to it
is the moment it is published. The file it replaces is kept for
:data:`SUPERSEDED_GRACE_SECONDS` (queries and downloads that started from the previous
record still read it), then swept, as is a file written by a publish that never got
recorded (a crash). Views list their files explicitly, ``union_by_name`` (a shard written
before a column was added reads it as NULL). A table with no rows has a zero-row
placeholder shard (``created_month=empty``), so its view binds and its schema is known.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from agnes_sync import atomic
from agnes_sync.contract import ExtractWriter, PublishedFile, PublishedTable
from agnes_sync.hashing import file_hash
from agnes_sync.locks import lock_for
from agnes_sync.sql_text import quote_ident, quote_literal
from connectors.jira.tables import DESCRIPTIONS, SCHEMAS, TableNames

LABEL = "created_month"
EMPTY = "empty"  # the placeholder partition of a table with no rows
SUPERSEDED_GRACE_SECONDS = 600.0

Listing = dict[str, dict[str, PublishedFile]]  # kind -> month -> its current file


class ExtractRecord:
    def __init__(self, writer: ExtractWriter, names: TableNames) -> None:
        self.writer = writer
        self.paths = writer.paths
        self.names = names
        self._swept = 0.0
        self._cached: tuple[tuple[int, ...], Listing] | None = None  # identity -> listing

    # --- reading -------------------------------------------------------------------------

    def _identity(self) -> tuple[int, ...]:
        """Changes whenever the extract DB is written (by us or anyone else)."""
        found: list[int] = []
        for path in (self.paths.db, self.paths.db.with_name(self.paths.db.name + ".wal")):
            try:
                stat = path.stat()
            except FileNotFoundError:
                found.extend((0, 0, 0))
            else:
                found.extend((stat.st_ino, stat.st_mtime_ns, stat.st_size))
        return tuple(found)

    def current(self) -> Listing:
        """The recorded file of each month of each recorded table (placeholders included);
        read from the extract only when it changed since this record last wrote it."""
        if not self.paths.db.is_file():
            return {}
        cached = self._cached
        if cached is not None and cached[0] == self._identity():
            return {kind: dict(months) for kind, months in cached[1].items()}
        kinds = {name: kind for kind, name in self.names.all().items()}
        found: Listing = {}
        with self.writer.connect() as con:
            rows = con.execute(
                "SELECT m.table_name, f.path, f.part, f.rows, f.size_bytes, f.content_hash, "
                "f.fingerprint FROM _meta m LEFT JOIN _files f USING (table_name)"
            ).fetchall()
        for table, *file in rows:
            kind = kinds.get(table)
            if kind is None:
                continue
            months = found.setdefault(kind, {})
            if file[0] is not None:
                months[file[1] or EMPTY] = PublishedFile(*file)
        self._cached = (self._identity(), {kind: dict(m) for kind, m in found.items()})
        return found

    def tables(self) -> set[str]:
        """The tables the extract has a record of."""
        return {self.names.of(kind) for kind in self.current()}

    def published(self, kind: str) -> PublishedTable:
        """``kind``'s table as the extract records it."""
        table = self.names.of(kind)
        with self.writer.connect() as con:
            files = con.execute(
                "SELECT path, part, rows, size_bytes, content_hash, fingerprint FROM _files "
                "WHERE table_name = ? ORDER BY path",
                [table],
            ).fetchall()
            meta = con.execute(
                "SELECT rows, size_bytes, extracted_at FROM _meta WHERE table_name = ?", [table]
            ).fetchone()
        rows, size, at = meta if meta else (0, 0, datetime.now(UTC))
        return PublishedTable(
            table, "local", rows or 0, size or 0, at, [PublishedFile(*r) for r in files]
        )

    def path(self, file: PublishedFile) -> Path:
        return self.paths.root / file.path

    # --- writing -------------------------------------------------------------------------

    def new_shard(self, kind: str, month: str, table: pa.Table) -> PublishedFile:
        """Write ``table`` as a new shard file of ``kind``'s ``month`` (not yet recorded)."""
        folder = self.paths.table_folder(self.names.of(kind)) / f"{LABEL}={month}"
        name = f"part-{time.time_ns() // 1_000_000}-{secrets.token_hex(3)}.parquet"
        target = folder / name
        staged = atomic.staging_path(target)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            pq.write_table(table, staged, compression="zstd")
            atomic.publish(staged, target, sync_dir=False)
        finally:
            atomic.discard(staged)
        digest = file_hash(target)
        relative = str(target.relative_to(self.paths.root))
        return PublishedFile(relative, month, table.num_rows, target.stat().st_size, digest, digest)

    def write(self, listing: Listing) -> set[Path]:
        """Record ``listing``'s tables (a table without months gets its placeholder), in
        one transaction, under the extract's lock; returns the files it superseded."""
        now = datetime.now(UTC)
        with lock_for(self.paths.db):
            before = self.current()
            after = {kind: dict(months) for kind, months in before.items()}
            complete: Listing = {}
            for kind, months in listing.items():
                real = {m: f for m, f in months.items() if m != EMPTY}
                if real:
                    complete[kind] = real
                else:
                    held = months.get(EMPTY) or before.get(kind, {}).get(EMPTY)
                    empty = SCHEMAS[kind].empty_table()
                    complete[kind] = {EMPTY: held or self.new_shard(kind, EMPTY, empty)}
            folders = {self.path(f).parent for m in complete.values() for f in m.values()}
            for folder in folders:
                atomic.fsync_dir(folder)
            with self.writer.connect() as con:
                con.begin()
                for kind, months in complete.items():
                    self._record(con, kind, list(months.values()), now)
                con.commit()
            after.update(complete)
            self._cached = (self._identity(), after)
        kept = {f.path for months in complete.values() for f in months.values()}
        return {
            self.path(f)
            for kind in complete
            for f in before.get(kind, {}).values()
            if f.path not in kept
        }

    def _record(
        self, con: duckdb.DuckDBPyConnection, kind: str, files: list[PublishedFile], now: datetime
    ) -> None:
        table = self.names.of(kind)
        listed = ", ".join(quote_literal(str(self.path(f))) for f in sorted(files, key=_by_path))
        con.execute(
            f"CREATE OR REPLACE VIEW {quote_ident(table)} AS SELECT * FROM read_parquet("
            f"[{listed}], union_by_name = true, hive_partitioning = false)"
        )
        con.execute("DELETE FROM _files WHERE table_name = ?", [table])
        con.executemany(
            "INSERT INTO _files VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                [table, f.path, f.part, f.rows, f.size_bytes, f.content_hash, f.fingerprint]
                for f in files
            ],
        )
        con.execute("DELETE FROM _remote_tables WHERE table_name = ?", [table])
        con.execute(
            "INSERT OR REPLACE INTO _meta VALUES (?, ?, ?, ?, ?, 'local')",
            [
                table,
                DESCRIPTIONS[kind],
                sum(f.rows for f in files),
                sum(f.size_bytes for f in files),
                now,
            ],
        )

    # --- cleaning up ---------------------------------------------------------------------

    @staticmethod
    def superseded(paths: set[Path]) -> None:
        """Start the grace period of files no longer recorded (their mtime says since when)."""
        for path in paths:
            try:
                os.utime(path)
            except FileNotFoundError:
                continue

    def sweep(self, *, force: bool = False, grace: float = SUPERSEDED_GRACE_SECONDS) -> int:
        """Delete shard files no record names, unchanged for ``grace`` seconds; at most
        once a minute unless ``force``. Returns how many went."""
        now = time.time()
        if not force and now - self._swept < 60:
            return 0
        self._swept = now
        with lock_for(self.paths.db):
            recorded = {
                str(self.path(f)) for months in self.current().values() for f in months.values()
            }
            removed = 0
            for name in self.names.all().values():
                folder = self.paths.table_folder(name)
                for path in folder.glob(f"{LABEL}=*/*.parquet"):
                    if str(path) not in recorded and now - path.stat().st_mtime >= grace:
                        atomic.discard(path)
                        removed += 1
                for month in folder.glob(f"{LABEL}=*"):
                    if month.is_dir() and not any(month.iterdir()):
                        shutil.rmtree(month, ignore_errors=True)
            return removed


def _by_path(file: PublishedFile) -> str:
    return file.path
