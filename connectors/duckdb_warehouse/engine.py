"""Remote queries on a DuckDB database file: the demo's and the tests' stand-in warehouse.

The file is attached read-only to a DuckDB locked like a sandbox (only that file is
reachable). Queries run on cursors of it; estimates come from storage metadata
(:mod:`connectors.duckdb_warehouse.storage_estimate`), and since DuckDB has no billing cap of
its own, a query is never started when its estimate is over the cap.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import duckdb
from sqlglot import exp

from agnes_mcp.rails.engine import EngineResources, Estimate, RemoteEngine, RemoteResult
from agnes_mcp.rails.refusals import RemoteEstimateFailed, RemoteScanTooLarge
from agnes_mcp.rails.sandbox import Limits, lock_down, run_select
from agnes_mcp.rails.tables import CatalogTable, RemoteLocation
from agnes_sync.connector import Column
from agnes_sync.sql_text import quote_ident, quote_literal

if TYPE_CHECKING:
    from agnes_sync.connector import Connector
from connectors.duckdb_warehouse.storage_estimate import (
    LiteralEvaluator,
    TableLayout,
    predicate_ranges,
    read_layout,
    referenced_columns,
)


class DuckDBWarehouseEngine(RemoteEngine):
    dialect = "duckdb"
    name = "duckdb_warehouse"

    def __init__(self, location: RemoteLocation, *, memory_limit: str, threads: int) -> None:
        self.location = location
        self._con = duckdb.connect()
        alias = quote_ident(location.alias)
        self._con.execute(f"ATTACH {quote_literal(location.url)} AS {alias} (READ_ONLY)")
        self._con.execute(f"USE {alias}")
        size = self._con.execute(
            "SELECT block_size FROM pragma_database_size() WHERE database_name = ?",
            [location.alias],
        ).fetchone()
        self._block_size = int(size[0]) if size else 262_144
        lock_down(self._con, [location.url], memory_limit=memory_limit, threads=threads)
        self._layouts: dict[str, TableLayout] = {}
        self._lock = threading.Lock()
        self._literals = LiteralEvaluator()

    @classmethod
    def open(
        cls, location: RemoteLocation, source: Connector, resources: EngineResources
    ) -> DuckDBWarehouseEngine:
        return cls(location, memory_limit=resources.memory_limit, threads=resources.threads)

    def _layout(self, table: CatalogTable) -> TableLayout:
        assert table.remote is not None
        key = table.remote.remote_name
        with self._lock:
            layout = self._layouts.get(key)
        if layout is None:
            parts = [p.strip('"') for p in key.split(".")]
            qualified = ".".join([self.location.alias, *parts])
            cursor = self._con.cursor()
            try:
                layout = read_layout(cursor, qualified, self._block_size)
            finally:
                cursor.close()
            with self._lock:
                self._layouts[key] = layout
        return layout

    def estimate(self, tree: exp.Expression, tables: list[CatalogTable]) -> Estimate:
        total, rows, per_table = 0, 0, {}
        try:
            for table in tables:
                layout = self._layout(table)
                names = _names_of(tree, table)
                columns = referenced_columns(tree, names, layout.columns)
                ranges = predicate_ranges(tree, names, self._literals, self.dialect)
                scan, kept_rows = layout.estimate(columns, ranges)
                per_table[table.id] = {
                    "scan_bytes": scan,
                    "columns": sorted(columns) if columns is not None else "*",
                    "pruned_on": sorted(ranges),
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
        if estimate.scan_bytes > max_bytes:  # DuckDB has no billing cap: never start it
            raise RemoteScanTooLarge(
                f"The query would scan {estimate.scan_bytes} bytes; the cap is {max_bytes}.",
                details={"scan_bytes": estimate.scan_bytes, "limit_bytes": max_bytes},
            )
        result = run_select(self._con, tree.sql(dialect="duckdb"), limits, prepare=self._use)
        return RemoteResult.of(result, estimate.scan_bytes)

    def _use(self, cursor: duckdb.DuckDBPyConnection) -> None:
        """Each cursor starts in the in-memory catalog: point it at the warehouse."""
        cursor.execute(f"USE {quote_ident(self.location.alias)}")

    def describe(self, table: CatalogTable) -> list[Column]:
        assert table.remote is not None
        cursor = self._con.cursor()
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
        result = run_select(self._con, sql, limits, prepare=self._use)
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
        self._con.close()


def _iso(value: object) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _names_of(tree: exp.Expression, table: CatalogTable) -> set[str]:
    """How the query refers to ``table``: its id, its remote name and any alias."""
    assert table.remote is not None
    remote_last = table.remote.parts[-1]
    names = {table.id, remote_last}
    for node in tree.find_all(exp.Table):
        if node.name.lower() in names and node.alias:
            names.add(node.alias.lower())
    return names
