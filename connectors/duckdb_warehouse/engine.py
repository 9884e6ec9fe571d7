"""Remote queries on a DuckDB database file: the demo's and the tests' stand-in warehouse.

The file is attached read-only to a DuckDB locked like a sandbox (only that file is
reachable). Estimates come from storage metadata
(:mod:`connectors.duckdb_warehouse.storage_estimate`) and a query is not started when its
estimate is over the cap. Since DuckDB has no billing cap of its own and an estimate can
be wrong, each query runs in a one-thread DuckDB instance of its own whose reads the
kernel counts (:mod:`connectors.duckdb_warehouse.read_meter`): it is stopped when it has
read more than the cap, and charged what it read, never the estimate.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
from sqlglot import exp

from agnes_mcp.rails import value_guards
from agnes_mcp.rails.engine import EngineResources, Estimate, RemoteEngine, RemoteResult
from agnes_mcp.rails.policy import real_table_nodes
from agnes_mcp.rails.refusals import (
    QueryRefused,
    QueryTimeout,
    RemoteEstimateFailed,
    RemoteScanTooLarge,
)
from agnes_mcp.rails.sandbox import Limits, RunResult, SandboxConnection, lock_down, run_select
from agnes_mcp.rails.spill import SPILL_BYTES
from agnes_mcp.rails.tables import CatalogTable, RemoteLocation
from agnes_mcp.rails.value_guards import MAX_VALUE_BYTES
from agnes_sync.caller import interruptible
from agnes_sync.connector import Column
from agnes_sync.sql_text import quote_ident, quote_literal

if TYPE_CHECKING:
    from agnes_sync.connector import Connector
from connectors.duckdb_warehouse import read_meter
from connectors.duckdb_warehouse.storage_estimate import (
    TableLayout,
    read_layout,
    referenced_columns,
    scan_ranges,
)

LITERAL_SECONDS = 1.0
"""How long the literals of one estimate may take to evaluate, together: past it, the
ones left prune nothing. (Each had this time of its own: a thousand predicates of a
slow literal made one estimate, and so one query, run 15 minutes past its timeout.)"""


# A query whose answer is metered (string_agg names a growing aggregate), run once.
WARM_UP = "SELECT string_agg(v, ',') AS v FROM (VALUES ('a'), ('b')) AS t(v)"


class LiteralEvaluator:
    """Evaluates column-free expressions (``DATE '2026-01-01' - INTERVAL 7 DAY``) as any
    query runs (:func:`~agnes_mcp.rails.sandbox.run_select`): in a locked DuckDB that can
    reach no file, with the value guards, a memory limit, one thread and a timer. An
    expression that is refused, fails or takes longer than :data:`LITERAL_SECONDS` is not
    a literal to prune on (``ValueError``): the estimate keeps the row groups it would have
    ruled out. Estimating never runs what the rails would not."""

    def __init__(self, memory_limit: str) -> None:
        self._memory_limit = memory_limit
        self._local = threading.local()

    def _con(self) -> SandboxConnection:
        """This thread's locked DuckDB, made again when a literal broke the last one (an
        internal error invalidates a database: every later statement would fail)."""
        con: SandboxConnection | None = getattr(self._local, "con", None)
        if con is None or con.retired:
            raw = duckdb.connect()
            try:
                lock_down(raw, [], memory_limit=self._memory_limit, threads=1)
            except BaseException:
                raw.close()
                raise
            con = self._local.con = SandboxConnection(raw, {})
        return con

    def within(self, seconds: float | None = None) -> TimedLiterals:
        """The literals of one estimate, evaluated within ``seconds`` in all (by default
        :data:`LITERAL_SECONDS`)."""
        return TimedLiterals(self, time.monotonic() + _seconds(seconds))

    def value(self, expression: exp.Expression, dialect: str, seconds: float | None = None) -> Any:
        if any(True for _ in expression.find_all(exp.Column, exp.Subquery, exp.Table)):
            raise ValueError("not a literal")
        sql = (
            expression.sql(dialect="duckdb")
            if dialect == "duckdb"
            else expression.sql(dialect=dialect)
        )
        limits = Limits(rows=1, bytes=MAX_VALUE_BYTES, timeout_seconds=_seconds(seconds))
        try:
            result = run_select(self._con(), f"SELECT {sql} AS v", limits)
        except QueryRefused as refused:
            raise ValueError(f"not a literal: {refused.code}") from None
        if result.truncated or not result.table.num_rows:
            raise ValueError("not a literal")
        return result.table.column(0)[0].as_py()


@dataclass
class TimedLiterals:
    """An estimate's evaluator (:class:`~connectors.duckdb_warehouse.storage_estimate.Literals`):
    each literal takes what is left of the estimate's time, and none is evaluated past it."""

    evaluator: LiteralEvaluator
    deadline: float  # time.monotonic()

    def value(self, expression: exp.Expression, dialect: str) -> Any:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ValueError("not a literal: the estimate's time for literals is spent")
        return self.evaluator.value(expression, dialect, seconds=min(left, LITERAL_SECONDS))


def _seconds(given: float | None) -> float:
    return LITERAL_SECONDS if given is None else given


class DuckDBWarehouseEngine(RemoteEngine):
    dialect = "duckdb"
    name = "duckdb_warehouse"

    def __init__(
        self,
        location: RemoteLocation,
        *,
        memory_limit: str,
        threads: int,
        spill_bytes: int = SPILL_BYTES,
    ) -> None:
        self.location = location
        self._memory_limit = memory_limit
        self._threads = threads
        self._spill_bytes = spill_bytes
        self._block_size = 262_144
        self._live = self._open()
        self._layouts: dict[str, TableLayout] = {}
        self._lock = threading.Lock()
        self._literals = LiteralEvaluator(memory_limit)
        # The first metered answer (result_meter) runs DuckDB code no query ran before, and
        # the kernel pages it in from the library on that thread: ~9 MB the read meter
        # would charge to the first analyst whose answer is metered. Paged in here instead.
        run_select(self._live, WARM_UP, Limits(rows=1, bytes=1024, timeout_seconds=10))

    def _open(self) -> SandboxConnection:
        """The warehouse attached read-only to a DuckDB locked like a sandbox."""
        con = duckdb.connect()
        try:
            alias = quote_ident(self.location.alias)
            con.execute(f"ATTACH {quote_literal(self.location.url)} AS {alias} (READ_ONLY)")
            con.execute(f"USE {alias}")
            size = con.execute(
                "SELECT block_size FROM pragma_database_size() WHERE database_name = ?",
                [self.location.alias],
            ).fetchone()
            self._block_size = int(size[0]) if size else 262_144
            lock_down(
                con,
                [self.location.url],
                memory_limit=self._memory_limit,
                threads=self._threads,
                spill_bytes=self._spill_bytes,
            )
            self._use(con)
        except BaseException:
            con.close()
            raise
        return SandboxConnection(con, {})

    def _con(self) -> SandboxConnection:
        """The engine's DuckDB, made again when a query broke it (an internal error
        invalidates a database, and every later statement, anyone's, would fail)."""
        with self._lock:
            if self._live.retired:
                self._live = self._open()
            return self._live

    @classmethod
    def open(
        cls, location: RemoteLocation, source: Connector, resources: EngineResources
    ) -> DuckDBWarehouseEngine:
        return cls(
            location,
            memory_limit=resources.memory_limit,
            threads=resources.threads,
            spill_bytes=resources.spill_bytes,
        )

    def _layout(self, table: CatalogTable) -> TableLayout:
        assert table.remote is not None
        key = table.remote.remote_name
        with self._lock:
            layout = self._layouts.get(key)
        if layout is None:
            parts = [p.strip('"') for p in key.split(".")]
            qualified = ".".join([self.location.alias, *parts])
            cursor = self._con().cursor()
            try:
                layout = read_layout(cursor, qualified, self._block_size)
            finally:
                cursor.close()
            with self._lock:
                self._layouts[key] = layout
        return layout

    def estimate(self, tree: exp.Expression, tables: list[CatalogTable]) -> Estimate:
        total, rows, per_table = 0, 0, {}
        literals = self._literals.within()
        try:
            for table in tables:
                layout = self._layout(table)
                names = _names_of(tree, table)
                columns = referenced_columns(tree, names, layout.columns)
                kept: set[int] = set()
                pruned_on: set[str] = set()
                for node in _scans_of(tree, table):  # each scan pruned by its own WHERE
                    ranges = scan_ranges(node, names, literals, self.dialect)
                    kept |= layout.kept(ranges)
                    pruned_on |= set(ranges)
                scan, kept_rows = layout.cost(columns, kept)
                per_table[table.id] = {
                    "scan_bytes": scan,
                    "columns": sorted(columns) if columns is not None else "*",
                    "pruned_on": sorted(pruned_on),
                }
                total += scan
                rows = max(rows, kept_rows)
        except duckdb.Error as exc:
            raise RemoteEstimateFailed(f"The warehouse could not price the query: {exc}") from None
        return Estimate(scan_bytes=total, result_rows=rows, detail={"tables": per_table})

    def execute(
        self,
        tree: exp.Expression,
        tables: list[CatalogTable],
        *,
        limits: Limits,
        max_bytes: int,
        labels: dict[str, str],
    ) -> RemoteResult:
        estimate = self.estimate(tree, tables)
        if estimate.scan_bytes > max_bytes:  # not started: it would pass the cap
            raise RemoteScanTooLarge(
                f"The query would scan {estimate.scan_bytes:,} bytes; the cap is {max_bytes:,}.",
                details={
                    "scan_bytes": estimate.scan_bytes,
                    "limit_bytes": max_bytes,
                    "bytes_scanned": 0,
                },
            )
        if not read_meter.available():  # no per-thread I/O counters here: trust the estimate
            try:
                result = run_select(
                    self._con(), tree.sql(dialect="duckdb"), limits, prepare=self._use
                )
            except QueryRefused as failed:  # charged as if it read what it was estimated to
                failed.details["bytes_scanned"] = estimate.scan_bytes
                raise
            return RemoteResult.of(result, estimate.scan_bytes)
        con = self._query_instance()
        readings: list[read_meter.Reading] = []
        measured: list[int] = []

        def metered(cursor: duckdb.DuckDBPyConnection) -> None:
            self._use(cursor)
            readings.append(read_meter.METER.start(max_bytes, cursor.interrupt))

        def run_metered() -> RunResult:
            try:
                return run_select(con, tree.sql(dialect="duckdb"), limits, prepare=metered)
            finally:
                measured.append(read_meter.METER.stop(readings[0]) if readings else 0)
                con.close()

        try:
            # The meter counts the reads of one thread: the query, its meter and a Ctrl-C's
            # stop (on Python's main thread the work moves to a thread of its own) on one.
            result = interruptible(run_metered)
        except QueryRefused as failed:
            scanned = measured[0] if measured else 0
            if isinstance(failed, QueryTimeout) and readings and readings[0].stopped:
                raise RemoteScanTooLarge(
                    f"The query read {scanned:,} bytes, more than the cap of {max_bytes:,}, "
                    f"and was stopped (it was estimated at {estimate.scan_bytes:,}).",
                    details={
                        "scan_bytes": estimate.scan_bytes,
                        "limit_bytes": max_bytes,
                        "bytes_scanned": scanned,
                    },
                ) from None
            # It failed or ran out of time after reading: what it read is charged all the same.
            failed.details["bytes_scanned"] = scanned
            raise
        scanned = measured[0]
        if scanned > max_bytes:  # it finished between two samples: still over, still refused
            raise RemoteScanTooLarge(
                f"The query read {scanned:,} bytes, more than the cap of {max_bytes:,} (it was "
                f"estimated at {estimate.scan_bytes:,}); its result is not returned.",
                details={
                    "scan_bytes": estimate.scan_bytes,
                    "limit_bytes": max_bytes,
                    "bytes_scanned": scanned,
                },
            )
        return RemoteResult.of(result, scanned)

    def _query_instance(self) -> duckdb.DuckDBPyConnection:
        """A one-thread DuckDB of the query's own over the warehouse, locked like a
        sandbox: every byte the query reads is read on the calling thread."""
        con = duckdb.connect(config={"threads": "1"})
        try:
            alias = quote_ident(self.location.alias)
            con.execute(f"ATTACH {quote_literal(self.location.url)} AS {alias} (READ_ONLY)")
            lock_down(
                con,
                [self.location.url],
                memory_limit=self._memory_limit,
                threads=1,
                spill_bytes=self._spill_bytes,
            )
        except duckdb.Error:
            con.close()
            raise
        return con

    def _use(self, cursor: duckdb.DuckDBPyConnection) -> None:
        """Each cursor starts in the in-memory catalog: point it at the warehouse, with the
        value guards that ``lock_down`` put in the in-memory catalog still found first."""
        alias = quote_ident(self.location.alias)
        cursor.execute(f"USE {alias}")
        cursor.execute(f"SET search_path = {quote_literal(value_guards.search_path(alias))}")

    def describe(self, table: CatalogTable) -> list[Column]:
        assert table.remote is not None
        cursor = self._con().cursor()
        self._use(cursor)
        try:
            rows = cursor.execute(f"DESCRIBE SELECT * FROM {table.remote.remote_name}").fetchall()
        finally:
            cursor.close()
        return [Column(r[0], r[1], r[2] != "NO") for r in rows]

    def preview(self, table: CatalogTable, rows: int, limits: Limits) -> RemoteResult:
        """``LIMIT n`` with no predicate: DuckDB stops after the first row group."""
        assert table.remote is not None
        sql = f"SELECT * FROM {table.remote.remote_name} LIMIT {int(rows)}"
        result = run_select(self._con(), sql, limits, prepare=self._use)
        return RemoteResult.of(result)

    def column_range(self, table: CatalogTable, column: str) -> tuple[str, str] | None:
        """From the row groups' min/max statistics: storage metadata, no scan."""
        bounds = [
            g.bounds[column] for g in self._layout(table).row_groups.values() if column in g.bounds
        ]
        if not bounds:
            return None
        low, high = min(b[0] for b in bounds), max(b[1] for b in bounds)
        return _iso(low), _iso(high)

    def close(self) -> None:
        with self._lock:
            live = self._live
        live.close()


def _iso(value: object) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _scans_of(tree: exp.Expression, table: CatalogTable) -> list[exp.Table]:
    """Every place the query reads ``table`` (its id or its warehouse name), as the rails
    resolved it (:func:`~agnes_mcp.rails.policy.real_table_nodes`): a name that refers to a
    common table expression in scope there is not a read of the table."""
    assert table.remote is not None
    own = {table.id.lower(), table.remote.parts[-1]}
    return [node for node in real_table_nodes(tree) if node.name.lower() in own]


def _names_of(tree: exp.Expression, table: CatalogTable) -> set[str]:
    """How the query refers to ``table``: its id, its remote name and any alias."""
    assert table.remote is not None
    remote_last = table.remote.parts[-1]
    names = {table.id, remote_last}
    for node in tree.find_all(exp.Table):
        if node.name.lower() in names and node.alias:
            names.add(node.alias.lower())
    return names
