"""The DuckDB warehouse engine's estimate against the bytes DuckDB really reads.

The truth is measured by :func:`benchmarks.read_bytes.bytes_read` (``rchar`` of a fresh
process around the query)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import sqlglot

from agnes_mcp.rails.tables import CatalogTable, RemoteLocation
from benchmarks.read_bytes import bytes_read
from connectors.duckdb_warehouse.engine import DuckDBWarehouseEngine

QUERIES = [
    "SELECT sum(amount) FROM main.events",
    "SELECT kind, count(*) FROM main.events GROUP BY 1",
    "SELECT * FROM main.events WHERE day = DATE '2026-03-01'",
    "SELECT id, amount FROM main.events WHERE day BETWEEN DATE '2026-02-01' AND DATE '2026-02-07'",
    "SELECT avg(amount) FROM main.events e WHERE e.day >= DATE '2026-04-01' - INTERVAL 3 DAY",
    "SELECT * FROM main.events WHERE id < 300000",
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wh") / "big.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE events AS SELECT range AS id, DATE '2026-01-01' + (range // 20000)::INTEGER AS day, "
        "['a', 'b', 'c', 'd'][1 + range % 4] AS kind, (hash(range) % 100000) / 100.0 AS amount "
        "FROM range(2000000)"
    )
    con.close()
    return path


@pytest.mark.slow
@pytest.mark.parametrize("sql", QUERIES)
def test_estimate_is_within_2x_of_what_is_read(warehouse: Path, sql: str) -> None:
    location = RemoteLocation("wh", "warehouse", "duckdb", str(warehouse), None, '"main"."events"')
    table = CatalogTable(
        id="events",
        description="",
        query_mode="remote",
        source="wh",
        rows=None,
        size_bytes=None,
        extracted_at=None,
        remote=location,
        partition_by="day",
    )
    engine = DuckDBWarehouseEngine(location, memory_limit="512MB", threads=2)
    try:
        estimate = engine.estimate(sqlglot.parse_one(sql, dialect="duckdb"), [table]).scan_bytes
    finally:
        engine.close()
    actual = bytes_read(warehouse, sql)
    assert actual > 0
    assert 0.5 <= estimate / actual <= 2.0, (estimate, actual)
