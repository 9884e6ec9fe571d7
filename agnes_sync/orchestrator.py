"""The orchestrator: every extract, seen through one analytics DuckDB.

``rebuild()`` reads every ``extracts/*/extract.duckdb`` (read-only, validated) and
writes ``analytics/server.duckdb`` with one view per local or materialized table plus
catalog tables (``_catalog``, ``_files``, ``_remote_tables``, ``_conflicts``,
``_problems``, ``_owners``). The new DB is built beside the old one and renamed over it,
so a reader opens either the previous complete DB or the new complete one, never a
half-built one. ``rebuild_source(name)`` re-reads only that source's extract (the
others come from a cache keyed by file identity) and swaps the same way.

Two sources exposing the same table name is a conflict: the source that owned the name
in the previous build keeps it (else the one that extracted it first); the other is
reported in ``_conflicts`` and left out, never silently swapped.

Views name their parquet files by absolute path (any DuckDB client can open an extract or
the analytics DB, whatever its working directory), and ``analytics/data_dir`` records the
data dir they name. ``relocate()``, called once at start, re-points everything when the
data dir was copied or restored to another path.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from agnes_sync import atomic
from agnes_sync.attach_host import Host, attached
from agnes_sync.contract import EXTRACT_DB, ExtractPaths
from agnes_sync.extract_reader import Extract, ExtractTable, read_extract
from agnes_sync.locks import lock_for
from agnes_sync.relocate import Relocation, move_extract, plan_move
from agnes_sync.sql_text import quote_ident

Row = tuple[object, ...]
LOCATION_FILE = "data_dir"  # beside the analytics DB: the data dir its paths name
logger = logging.getLogger("agnes.sync")

ANALYTICS_DDL = """
CREATE TABLE _catalog (
    table_name VARCHAR PRIMARY KEY, source VARCHAR, query_mode VARCHAR, description VARCHAR,
    rows BIGINT, size_bytes BIGINT, extracted_at TIMESTAMPTZ, incomplete VARCHAR
);
CREATE TABLE _files (
    table_name VARCHAR, source VARCHAR, path VARCHAR, part VARCHAR, rows BIGINT,
    size_bytes BIGINT, content_hash VARCHAR
);
CREATE TABLE _remote_tables (
    table_name VARCHAR PRIMARY KEY, source VARCHAR, alias VARCHAR, engine VARCHAR,
    url VARCHAR, token_env VARCHAR, remote_name VARCHAR
);
CREATE TABLE _conflicts (table_name VARCHAR, kept_source VARCHAR, dropped_source VARCHAR);
CREATE TABLE _problems (source VARCHAR, problem VARCHAR);
CREATE TABLE _owners (table_name VARCHAR PRIMARY KEY, source VARCHAR, since TIMESTAMPTZ);
CREATE TABLE _build (built_at TIMESTAMPTZ, tables INTEGER, seconds DOUBLE);
"""


@dataclass(frozen=True)
class Conflict:
    table: str
    kept_source: str
    dropped_source: str


@dataclass
class RebuildReport:
    tables: int
    sources: list[str]
    conflicts: list[Conflict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class _Cached:
    identity: tuple[int, ...]
    extract: Extract


def _identity(path: Path) -> tuple[int, ...]:
    """A file's identity for the cache: changes whenever it is rewritten (or disappears)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return (0, 0, 0)
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


class Orchestrator:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir.resolve()  # views record absolute paths
        self.extracts_root = self.root / "extracts"
        self.analytics_path = self.root / "analytics" / "server.duckdb"
        self.location_path = self.analytics_path.with_name(LOCATION_FILE)
        self._lock = threading.Lock()
        self._cache: dict[str, _Cached] = {}
        self._reader: duckdb.DuckDBPyConnection
        # Rebuilds read extracts and write the analytics DB through a DuckDB of their own
        # (attach_host), used only under the lock: no other thread's work shares it.
        self._host = Host()
        self.generation = 0

    def sources(self) -> list[str]:
        if not self.extracts_root.is_dir():
            return []
        return sorted(p.name for p in self.extracts_root.iterdir() if (p / EXTRACT_DB).is_file())

    # --- building ---------------------------------------------------------------------

    def rebuild(self) -> RebuildReport:
        """Re-read every extract and swap in a new analytics DB."""
        with self._lock:
            self._cache.clear()
            return self._build()

    def rebuild_source(self, source: str) -> RebuildReport:
        """Re-read one source's extract (the others from cache) and swap in a new DB."""
        with self._lock:
            self._cache.pop(source, None)
            return self._build()

    def _extract(self, source: str) -> Extract:
        paths = ExtractPaths.of(self.extracts_root, source)
        identity = _identity(paths.db) + _identity(paths.db.with_name(paths.db.name + ".wal"))
        cached = self._cache.get(source)
        if cached is not None and cached.identity == identity:
            return cached.extract
        with lock_for(paths.db):  # never read an extract while this process writes it
            extract = read_extract(paths, con=self._reader)
        self._cache[source] = _Cached(identity, extract)
        return extract

    def _build(self) -> RebuildReport:
        started = time.perf_counter()
        sources = self.sources()
        for gone in set(self._cache) - set(sources):
            del self._cache[gone]
        self._reader = self._host.cursor()
        try:
            extracts = {source: self._extract(source) for source in sources}
        finally:
            self._reader.close()
        owners = self._previous_owners()
        chosen, conflicts = _assign_owners(extracts, owners)
        problems = [p for e in extracts.values() for p in e.problems]

        self.analytics_path.parent.mkdir(parents=True, exist_ok=True)
        atomic.sweep_stale(self.analytics_path.parent)
        while True:
            staged = atomic.staging_path(self.analytics_path)
            try:
                _write_analytics(self._host, staged, chosen, conflicts, problems, owners, started)
            except _ViewDoesNotBind as failure:
                atomic.discard(staged)
                source, _ = chosen.pop(failure.table)
                problems.append(
                    f"extract '{source}', table '{failure.table}': view does not bind: "
                    f"{failure.reason}"
                )
                continue
            except BaseException:
                atomic.discard(staged)
                raise
            break
        atomic.publish(staged, self.analytics_path)
        self.generation += 1
        return RebuildReport(
            len(chosen), sources, conflicts, problems, time.perf_counter() - started
        )

    def _previous_owners(self) -> dict[str, tuple[str, datetime]]:
        if not self.analytics_path.is_file():
            return {}
        with (
            contextlib.suppress(duckdb.Error),
            lock_for(self.analytics_path),
            self._host.attached(self.analytics_path, read_only=True) as con,
        ):
            rows = con.execute("SELECT table_name, source, since FROM _owners").fetchall()
            return {name: (source, since) for name, source, since in rows}
        return {}

    # --- moving ---------------------------------------------------------------------

    def relocate(self) -> Relocation | None:
        """Serve a data dir copied or restored to another path from where it is now.

        On a normal start this reads one line, the data dir recorded in
        ``analytics/data_dir``, and returns ``None``. When it names another place (or is
        missing: a data dir from before it was kept), every extract is checked: views
        reading ``<old dir>/extracts/<source>/data/...`` are re-pointed here, absolute
        ``_files`` paths there become relative (as the contract has them), and remote
        attachments to a file under the old data dir (a DuckDB warehouse kept in it)
        follow; each extract in one transaction under its lock, only after the new view
        binds. Then the analytics DB is rebuilt (beside the old one, renamed over it) and
        the new place is recorded, last. The old place is never read for data nor written.
        A view whose files are not here is left as it was and reported (the validation
        then leaves its table out, with the reason in ``_problems``); the move is tried
        again at each start until its files are here or the table has synced again.
        """
        with self._lock:
            recorded = self._recorded_data_dir()
            if recorded == str(self.root):
                return None
            sources = self.sources()
            if not sources and not self.analytics_path.is_file():  # a new data dir
                self.location_path.parent.mkdir(parents=True, exist_ok=True)
                atomic.write_text(self.location_path, f"{self.root}\n")
                return None
            old_dirs = {recorded} if recorded else set()
            with contextlib.closing(duckdb.connect()) as reader:
                for source in sources:  # first the old places any extract names
                    paths = self._paths(source)
                    with lock_for(paths.db), contextlib.suppress(duckdb.Error):
                        old_dirs |= plan_move(reader, paths, self.root, set()).old_dirs
                old_dirs.discard(str(self.root))
                relocation = Relocation(str(self.root), sorted(old_dirs))
                for source in sources:
                    move_extract(reader, self._paths(source), self.root, old_dirs, relocation)
            self._cache.clear()
            build = self._build()
            if not relocation.problems:  # else tried again at the next start
                atomic.write_text(self.location_path, f"{self.root}\n")
        if relocation.moved_from:
            logger.warning(
                "The data dir moved from %s to %s: re-pointed %d view(s), %d file path(s) and "
                "%d remote attachment(s) in the extracts, and rebuilt the analytics DB "
                "(%d tables).",
                ", ".join(relocation.moved_from),
                relocation.data_dir,
                relocation.views,
                relocation.files,
                relocation.attachments,
                build.tables,
            )
        for problem in relocation.problems:
            logger.warning("After the data dir moved: %s", problem)
        return relocation

    def _paths(self, source: str) -> ExtractPaths:
        return ExtractPaths.of(self.extracts_root, source)

    def _recorded_data_dir(self) -> str | None:
        """Where the extracts and the analytics DB were last made to point (``None``:
        never recorded: a data dir from before it was kept)."""
        try:
            return self.location_path.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    # --- reading ----------------------------------------------------------------------

    def ensure_built(self) -> None:
        if not self.analytics_path.is_file():
            self.rebuild()

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to the current analytics DB (built if missing)."""
        self.ensure_built()
        return duckdb.connect(str(self.analytics_path), read_only=True)

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The current analytics DB (built if missing) for reading its catalog tables,
        attached read-only to the process's reader host (:mod:`agnes_sync.attach_host`):
        ~1 ms where :meth:`connect` opens a DuckDB of its own (~10 ms). The host runs
        on one thread, so scans of the views belong on :meth:`connect`."""
        self.ensure_built()
        with lock_for(self.analytics_path), attached(self.analytics_path, read_only=True) as con:
            yield con

    def conflicts(self) -> list[Conflict]:
        with self.reading() as con:
            rows = con.execute("SELECT * FROM _conflicts ORDER BY 1").fetchall()
        return [Conflict(*r) for r in rows]

    def problems(self) -> list[str]:
        with self.reading() as con:
            return [r[0] for r in con.execute("SELECT problem FROM _problems").fetchall()]


def _assign_owners(
    extracts: dict[str, Extract], owners: dict[str, tuple[str, datetime]]
) -> tuple[dict[str, tuple[str, ExtractTable]], list[Conflict]]:
    """Who serves each table name; everyone else offering the name is a conflict."""
    offers: dict[str, list[tuple[str, ExtractTable]]] = {}
    for source, extract in extracts.items():
        for name, table in extract.tables.items():
            offers.setdefault(name, []).append((source, table))
    chosen: dict[str, tuple[str, ExtractTable]] = {}
    conflicts: list[Conflict] = []
    far_future = datetime.max.replace(tzinfo=UTC)
    for name, candidates in offers.items():
        previous = owners.get(name, (None,))[0]
        ranked = sorted(
            candidates,
            key=lambda c: (c[0] != previous, c[1].extracted_at or far_future, c[0]),
        )
        chosen[name] = ranked[0]
        conflicts.extend(Conflict(name, ranked[0][0], other) for other, _ in ranked[1:])
    return chosen, conflicts


class _ViewDoesNotBind(Exception):
    def __init__(self, table: str, reason: str) -> None:
        super().__init__(table)
        self.table = table
        self.reason = reason


def _write_analytics(
    host: Host,
    path: Path,
    chosen: dict[str, tuple[str, ExtractTable]],
    conflicts: list[Conflict],
    problems: list[str],
    owners: dict[str, tuple[str, datetime]],
    started: float,
) -> None:
    """Write a complete analytics DB at ``path``, in one transaction.

    Views are created one by one (a view that does not bind raises
    :class:`_ViewDoesNotBind`; the caller drops that table and tries again); catalog
    rows go in as one Arrow batch per table, since single-row INSERTs cost ~0.5 ms each.
    """
    now = datetime.now(UTC)
    with lock_for(path), host.attached(path) as con:  # no DuckDB of its own: attach_host
        con.begin()
        con.execute(ANALYTICS_DDL)
        catalog: list[Row] = []
        files: list[Row] = []
        remote: list[Row] = []
        owned: list[Row] = []
        for name, (source, table) in sorted(chosen.items()):
            if table.remote is None:
                try:
                    con.execute(f"CREATE VIEW {quote_ident(name)} AS {table.select_sql}")
                except duckdb.Error as exc:
                    raise _ViewDoesNotBind(name, str(exc).splitlines()[0]) from None
                files.extend(
                    (name, source, str(f.path), f.part, f.rows, f.size_bytes, f.content_hash)
                    for f in table.files
                )
            else:
                ref = table.remote
                remote.append(
                    (
                        name,
                        source,
                        ref.alias,
                        ref.engine,
                        ref.url,
                        ref.token_env,
                        ref.remote_name,
                    )
                )
            catalog.append(
                (
                    name,
                    source,
                    table.query_mode,
                    table.description,
                    table.rows,
                    table.size_bytes,
                    table.extracted_at,
                    table.incomplete,
                )
            )
            previous = owners.get(name)
            owned.append((name, source, previous[1] if previous and previous[0] == source else now))
        _insert(con, "_catalog", catalog)
        _insert(con, "_files", files)
        _insert(con, "_remote_tables", remote)
        _insert(con, "_owners", owned)
        _insert(con, "_conflicts", [(c.table, c.kept_source, c.dropped_source) for c in conflicts])
        _insert(con, "_problems", [(_source_of(p), p) for p in problems])
        _insert(con, "_build", [(now, len(chosen), time.perf_counter() - started)])
        con.commit()  # the host checkpoints it into the file at once


def _source_of(problem: str) -> str:
    return problem.split("'")[1] if problem.startswith("extract '") else ""


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[Row]) -> None:
    """Insert many rows in one statement, through an Arrow table matching ``table``'s columns."""
    if not rows:
        return
    columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
    batch = pa.table({c: [row[i] for row in rows] for i, c in enumerate(columns)})
    con.register("_agnes_batch", batch)
    try:
        con.execute(f"INSERT INTO {table} SELECT * FROM _agnes_batch")
    finally:
        con.unregister("_agnes_batch")
