"""The extract contract: what every connector leaves behind for the orchestrator.

::

    extracts/<source>/extract.duckdb
        _meta(table_name, description, rows, size_bytes, extracted_at, query_mode)
        _remote_attach(alias, engine, url, token_env)        -- where remote tables live
        _files(table_name, path, part, rows, size_bytes, content_hash, fingerprint)
        _remote_tables(table_name, alias, remote_name)
        _incomplete(table_name, why)     -- tables published with part of their rows
        one view per table: over data/<table>.parquet, over data/<table>/*/*.parquet
        (hive-style partition folders), or over <alias>.<remote_name> for remote tables
    extracts/<source>/data/...

``_meta`` and ``_remote_attach`` are the stable core any connector must write;
``_files`` (hash of every published file, for distribution), ``_remote_tables`` and
``_incomplete`` are written by :class:`ExtractWriter` for the connectors that use it.
``_incomplete`` names a table whose published rows are not all its source holds yet (a
first load split into parts, stopped part way) and why, in words every answer that reads
it repeats (:meth:`ExtractWriter.publishes_incomplete`); a later publish clears it.
``_files`` paths are relative to the extract folder, inside its ``data/``. Views use
absolute paths, so the orchestrator can copy their SQL into the analytics DB (and any
DuckDB client can open the extract); a data dir copied or restored to another path is
re-pointed at start by :meth:`agnes_sync.orchestrator.Orchestrator.relocate`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from agnes_sync import atomic
from agnes_sync.attach_host import attached
from agnes_sync.hashing import file_hash
from agnes_sync.locks import lock_for
from agnes_sync.sql_text import quote_ident, quote_literal

EXTRACT_DB = "extract.duckdb"
DATA = "data"
QUERY_MODES = ("local", "materialized", "remote")
PART_FILE = "part-0.parquet"

WAL_BYTES = 64 << 10  # writes through connect() checkpoint once the WAL is past this

CONTRACT_TABLES = ("_meta", "_remote_attach", "_files", "_remote_tables", "_incomplete")
CONTRACT_DDL = """
CREATE TABLE IF NOT EXISTS _meta (
    table_name   VARCHAR PRIMARY KEY,
    description  VARCHAR,
    rows         BIGINT,
    size_bytes   BIGINT,
    extracted_at TIMESTAMPTZ,
    query_mode   VARCHAR
);
CREATE TABLE IF NOT EXISTS _remote_attach (
    alias     VARCHAR PRIMARY KEY,
    engine    VARCHAR,  -- a registered remote engine (agnes.remote_engines)
    url       VARCHAR,
    token_env VARCHAR
);
CREATE TABLE IF NOT EXISTS _files (
    table_name   VARCHAR NOT NULL,
    path         VARCHAR NOT NULL,
    part         VARCHAR,
    rows         BIGINT,
    size_bytes   BIGINT,
    content_hash VARCHAR,
    fingerprint  VARCHAR,
    PRIMARY KEY (table_name, path)
);
CREATE TABLE IF NOT EXISTS _remote_tables (
    table_name  VARCHAR PRIMARY KEY,
    alias       VARCHAR NOT NULL,
    remote_name VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS _incomplete (
    table_name VARCHAR PRIMARY KEY,
    why        VARCHAR NOT NULL
);
"""


@dataclass(frozen=True)
class ExtractPaths:
    """Where one source's extract lives."""

    root: Path  # DATA_DIR/extracts/<source>

    @classmethod
    def of(cls, extracts_root: Path, source: str) -> ExtractPaths:
        return cls(extracts_root / source)

    @property
    def source(self) -> str:
        return self.root.name

    @property
    def db(self) -> Path:
        return self.root / EXTRACT_DB

    @property
    def data(self) -> Path:
        return self.root / DATA

    def table_file(self, table: str) -> Path:
        return self.data / f"{table}.parquet"

    def table_folder(self, table: str) -> Path:
        return self.data / table


@dataclass(frozen=True)
class PublishedFile:
    path: str  # relative to the extract folder, e.g. data/orders.parquet
    part: str | None
    rows: int
    size_bytes: int
    content_hash: str
    fingerprint: str | None = None


@dataclass(frozen=True)
class StagedPart:
    """A partition written to a temporary file, with its order-independent row fingerprint."""

    staged: Path
    rows: int
    fingerprint: str


@dataclass
class PublishedTable:
    table: str
    query_mode: str
    rows: int
    size_bytes: int
    extracted_at: datetime
    files: list[PublishedFile] = field(default_factory=list)
    unchanged_parts: int = 0
    # What the run's sync history should say besides the counts, e.g. "schema changed:
    # added channel" (written by _record; a connector may add its own).
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RemoteAttach:
    alias: str
    engine: str  # the registered remote engine that queries this warehouse
    url: str
    token_env: str | None = None


def parquet_rows(path: Path) -> int:
    """Rows of a parquet file, from its footer."""
    return int(pq.read_metadata(path).num_rows)


def _wal_bytes(db: Path) -> int:
    try:
        return db.with_name(db.name + ".wal").stat().st_size
    except FileNotFoundError:
        return 0


class ExtractWriter:
    """Writes one source's extract. Data first, then ``_meta``: a reader never sees
    metadata for data that is not in place. One writer per source at a time (a lock)."""

    def __init__(self, extracts_root: Path, source: str) -> None:
        self.paths = ExtractPaths.of(extracts_root.resolve(), source)
        self.paths.data.mkdir(parents=True, exist_ok=True)
        self._incomplete: dict[str, str] = {}  # for the next publish of each table

    def sweep(self, table: str) -> int:
        """Remove what a killed writer of ``table`` left behind (hidden temporary files)."""
        removed = 0
        for leftover in self.paths.data.glob(f".{table}.*{atomic.TMP_SUFFIX}"):
            atomic.remove_tree_or_file(leftover)
            removed += 1
        return removed + atomic.sweep_stale(self.paths.table_folder(table))

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The extract DB, with the contract tables, under the source's lock."""
        with lock_for(self.paths.db):
            if not self.paths.db.exists():
                self._create()
            con = duckdb.connect(str(self.paths.db))
            try:
                # Commits are durable in the WAL; closing does not checkpoint (~5 ms). But
                # every open (this writer's, each reader's ATTACH) replays the whole WAL, and
                # DuckDB's own threshold let it grow for thousands of publishes: after 200 an
                # open took 34 ms instead of 14. So it is checkpointed past WAL_BYTES.
                con.execute("PRAGMA disable_checkpoint_on_shutdown")
                con.execute(CONTRACT_DDL)
                yield con
                if _wal_bytes(self.paths.db) > WAL_BYTES:
                    con.execute("CHECKPOINT")
            finally:
                con.close()

    def _create(self) -> None:
        """A new extract DB appears whole: made with the contract tables under a temporary
        name, then renamed into place. Made in place, a writer killed before its tables
        were committed left a file every reader found without ``_meta``."""
        self.paths.db.parent.mkdir(parents=True, exist_ok=True)
        staged = atomic.staging_path(self.paths.db)
        con = duckdb.connect(str(staged))
        try:
            con.execute(CONTRACT_DDL)
            con.execute("CHECKPOINT")  # all in the file: no WAL to carry along
        finally:
            con.close()
        atomic.publish(staged, self.paths.db)

    # --- staging ---------------------------------------------------------------------

    def staging_file(self, table: str) -> Path:
        return atomic.staging_path(self.paths.table_file(table))

    def staging_dir(self, table: str) -> Path:
        return atomic.staging_path(self.paths.table_folder(table))

    # --- publishing -----------------------------------------------------------------------

    def publish_file(
        self,
        table: str,
        staged: Path,
        *,
        description: str,
        query_mode: str = "local",
        rows: int | None = None,
    ) -> PublishedTable:
        """Move a fully written parquet into place, then record it. ``rows``: what the
        writer counted (a COPY returns it), else read from the file's footer."""
        destination = self.paths.table_file(table)
        rows = parquet_rows(staged) if rows is None else rows
        content_hash = atomic.fsync_file_while(staged, file_hash)  # same bytes once renamed
        previous = atomic.set_aside(destination)
        try:
            atomic.publish(staged, destination, flushed=True, sync_dir=False)
        except BaseException:
            if previous is not None:  # the old file stays published: drop its second name
                atomic.discard(previous)
            raise
        published = PublishedFile(
            path=str(destination.relative_to(self.paths.root)),
            part=None,
            rows=rows,
            size_bytes=destination.stat().st_size,
            content_hash=content_hash,
        )
        view = f"SELECT * FROM read_parquet({quote_literal(str(destination))})"
        # The folder's fsync (the rename's durability, ~2 ms) runs beside the metadata's
        # statements and is waited for before their commit; so does freeing the old file.
        with ExitStack() as beside:
            renamed = beside.enter_context(atomic.Beside(atomic.fsync_dir, destination.parent))
            if previous is not None:
                beside.enter_context(atomic.Beside(atomic.discard, previous))
            return self._record(
                table,
                description,
                query_mode,
                view,
                [published],
                replace_files=True,
                before_commit=renamed.result,
            )

    def publish_parts(
        self,
        table: str,
        parts: dict[str, StagedPart],
        *,
        description: str,
        query_mode: str = "local",
        partition_label: str,
    ) -> PublishedTable:
        """Publish a partitioned table: rename only partitions whose fingerprint changed,
        remove partitions that are gone, keep the others untouched (same file, same mtime)."""
        folder = self.paths.table_folder(table)
        previous = self.fingerprints(table)
        files: list[PublishedFile] = []
        unchanged = 0
        for key in sorted(parts):
            part = parts[key]
            destination = folder / f"{partition_label}={key}" / PART_FILE
            relative = str(destination.relative_to(self.paths.root))
            old = previous.get(key)
            if old is not None and old.fingerprint == part.fingerprint and destination.is_file():
                atomic.discard(part.staged)
                files.append(old)
                unchanged += 1
                continue
            content_hash = atomic.fsync_file_while(part.staged, file_hash)
            atomic.publish(part.staged, destination, flushed=True)
            files.append(
                PublishedFile(
                    path=relative,
                    part=key,
                    rows=part.rows,
                    size_bytes=destination.stat().st_size,
                    content_hash=content_hash,
                    fingerprint=part.fingerprint,
                )
            )
        for key, old in previous.items():
            if key not in parts:
                stale = self.paths.root / old.path
                atomic.discard(stale)
                if stale.parent.is_dir() and not any(stale.parent.iterdir()):
                    stale.parent.rmdir()
        glob = quote_literal(str(folder / "*" / "*.parquet"))
        view = (
            f"SELECT * FROM read_parquet({glob}, union_by_name = true, hive_partitioning = false)"
        )
        published = self._record(table, description, query_mode, view, files, replace_files=True)
        published.unchanged_parts = unchanged
        return published

    def publish_remote(
        self,
        table: str,
        *,
        attach: RemoteAttach,
        remote_name: str,
        description: str,
        rows: int | None,
        size_bytes: int | None,
        bind_view: bool,
    ) -> PublishedTable:
        """Record a table that stays in the warehouse. With ``bind_view`` (the attach can be
        made here, e.g. a DuckDB file) a view over ``alias.remote_name`` is created too."""
        now = datetime.now(UTC)
        with self.connect() as con:
            con.begin()
            con.execute(
                "INSERT OR REPLACE INTO _remote_attach VALUES (?, ?, ?, ?)",
                [attach.alias, attach.engine, attach.url, attach.token_env],
            )
            con.execute(
                "INSERT OR REPLACE INTO _remote_tables VALUES (?, ?, ?)",
                [table, attach.alias, remote_name],
            )
            con.execute("DELETE FROM _files WHERE table_name = ?", [table])
            self._said_incomplete(con, table)
            con.execute(
                "INSERT OR REPLACE INTO _meta VALUES (?, ?, ?, ?, ?, 'remote')",
                [table, description, rows, size_bytes, now],
            )
            con.commit()
            if bind_view:
                con.execute(
                    f"ATTACH {quote_literal(attach.url)} AS {quote_ident(attach.alias)} (READ_ONLY)"
                )
                try:
                    con.execute(
                        f"CREATE OR REPLACE VIEW {quote_ident(table)} AS "
                        f"SELECT * FROM {quote_ident(attach.alias)}.{remote_name}"
                    )
                finally:
                    con.execute(f"DETACH {quote_ident(attach.alias)}")
        return PublishedTable(table, "remote", rows or 0, size_bytes or 0, now)

    def publishes_incomplete(self, table: str, why: str) -> None:
        """Say that the next publish of ``table`` holds only part of its rows, and why (it
        reads after the table's name: "holds the rows imported before 2026-03-01; the next
        sync loads the rest"). The publish records it in its own transaction, so a table
        is never seen part way without it; any later publish clears it."""
        self._incomplete[table] = why

    def _said_incomplete(self, con: duckdb.DuckDBPyConnection, table: str) -> None:
        """In a publish's transaction: ``table`` is whole, unless the connector said not."""
        con.execute("DELETE FROM _incomplete WHERE table_name = ?", [table])
        why = self._incomplete.pop(table, None)
        if why:
            con.execute("INSERT INTO _incomplete VALUES (?, ?)", [table, why])

    def drop(self, table: str) -> None:
        """Remove a table's data, view and metadata from the extract."""
        with self.connect() as con:
            con.execute(f"DROP VIEW IF EXISTS {quote_ident(table)}")
            for name in ("_meta", "_files", "_remote_tables", "_incomplete"):
                con.execute(f"DELETE FROM {name} WHERE table_name = ?", [table])
        atomic.discard(self.paths.table_file(table))
        folder = self.paths.table_folder(table)
        if folder.is_dir():
            import shutil

            shutil.rmtree(folder)

    # --- reading back ----------------------------------------------------------------------

    def fingerprints(self, table: str) -> dict[str, PublishedFile]:
        """The published partitions of ``table`` by partition key."""
        if not self.paths.db.is_file():
            return {}
        with self.connect() as con:
            rows = con.execute(
                "SELECT path, part, rows, size_bytes, content_hash, fingerprint FROM _files "
                "WHERE table_name = ? AND part IS NOT NULL",
                [table],
            ).fetchall()
        return {r[1]: PublishedFile(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows}

    def published_path(self, table: str) -> Path | None:
        """The single published parquet of ``table``, if there is one."""
        path = self.paths.table_file(table)
        return path if path.is_file() else None

    def _record(
        self,
        table: str,
        description: str,
        query_mode: str,
        view_sql: str,
        files: list[PublishedFile],
        *,
        replace_files: bool,
        before_commit: Callable[[], object] | None = None,
    ) -> PublishedTable:
        """Point ``table``'s view at ``view_sql`` and record ``files`` and ``_meta``, in one
        transaction; ``before_commit`` (e.g. waiting for the published files' folder to be
        on disk) runs just before its commit."""
        now = datetime.now(UTC)
        rows = sum(f.rows for f in files)
        size = sum(f.size_bytes for f in files)
        # Every statement here costs ~0.5 ms (the publish's fixed cost, paid per table):
        # the contract's DDL runs only when a contract table is missing, ``_meta`` is
        # replaced by DELETE + INSERT (INSERT OR REPLACE costs 2 ms), one file by execute.
        file_rows = [
            [table, f.path, f.part, f.rows, f.size_bytes, f.content_hash, f.fingerprint]
            for f in files
        ]
        with lock_for(self.paths.db), attached(self.paths.db) as con:
            con.begin()
            before, present = _catalog(con, table)
            if not present.issuperset(CONTRACT_TABLES):
                con.execute(CONTRACT_DDL)
            con.execute(f"CREATE OR REPLACE VIEW {quote_ident(table)} AS {view_sql}")
            change = schema_change(before, _view_columns(con, table))
            if replace_files:
                con.execute("DELETE FROM _files WHERE table_name = ?", [table])
            if len(file_rows) == 1:
                con.execute(_INSERT_FILE, file_rows[0])
            elif file_rows:
                con.executemany(_INSERT_FILE, file_rows)
            con.execute("DELETE FROM _remote_tables WHERE table_name = ?", [table])
            self._said_incomplete(con, table)
            con.execute("DELETE FROM _meta WHERE table_name = ?", [table])
            con.execute(
                "INSERT INTO _meta VALUES (?, ?, ?, ?, ?, ?)",
                [table, description, rows, size, now, query_mode],
            )
            if before_commit is not None:
                before_commit()
            con.commit()  # the host checkpoints it into the file (attach_host)
        return PublishedTable(table, query_mode, rows, size, now, files, notes=change)


_INSERT_FILE = "INSERT INTO _files VALUES (?, ?, ?, ?, ?, ?, ?)"
_COLUMNS = (
    "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE database_name = "
    "current_database() AND schema_name = 'main' AND table_name IN ({}) ORDER BY column_index"
)


def _catalog(con: duckdb.DuckDBPyConnection, table: str) -> tuple[dict[str, str], set[str]]:
    """The columns of ``table`` as the catalog holds them (bound when its view was made,
    so the file its view reads may have changed since) and which contract tables exist,
    in one read of the catalog."""
    names = [table, *CONTRACT_TABLES]
    rows = con.execute(_COLUMNS.format(", ".join("?" * len(names))), names).fetchall()
    columns = {str(name): str(kind) for owner, name, kind in rows if owner == table}
    return columns, {str(owner) for owner, _, _ in rows if owner in CONTRACT_TABLES}


def _view_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute(_COLUMNS.format("?"), [table]).fetchall()
    return {str(name): str(kind) for _, name, kind in rows}


def schema_change(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """``["schema changed: added x; removed y; retyped z: A -> B"]``, or ``[]`` when the
    columns are the same (or the table is new)."""
    if not before or before == after:
        return []
    parts = []
    added = [c for c in after if c not in before]
    removed = [c for c in before if c not in after]
    retyped = [
        f"{c}: {before[c]} -> {after[c]}" for c in after if c in before and before[c] != after[c]
    ]
    for label, names in (("added", added), ("removed", removed), ("retyped", retyped)):
        if names:
            parts.append(f"{label} {', '.join(names)}")
    return ["schema changed: " + "; ".join(parts)] if parts else []
