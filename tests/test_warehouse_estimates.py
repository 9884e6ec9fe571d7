"""The DuckDB warehouse engine's estimate against the bytes DuckDB really reads.

The truth is measured in a fresh process from /proc/self/io ``rchar`` (bytes returned by
read calls, page cache or not) around the query; DuckDB's own profiler does not count
reads made by parallel aggregations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import sqlglot

from agnes_mcp.query.catalog import CatalogTable, RemoteLocation
from agnes_mcp.query.engines.duckdb_warehouse import DuckDBWarehouseEngine

MEASURE = """
import sys, duckdb
def rchar():
    for line in open('/proc/self/io'):
        if line.startswith('rchar'):
            return int(line.split()[1])
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute(f"ATTACH '{sys.argv[1]}' AS warehouse (READ_ONLY)")
con.execute("USE warehouse")
con.execute("SELECT 1").fetchall()
before = rchar()
con.execute(sys.argv[2]).fetchall()
print(rchar() - before)
"""

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
    actual = int(
        subprocess.run(
            [sys.executable, "-c", MEASURE, str(warehouse), sql],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert actual > 0
    assert 0.5 <= estimate / actual <= 2.0, (estimate, actual)
