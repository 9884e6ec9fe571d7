"""A query (or a literal an estimate evaluates) that makes DuckDB fail internally leaves
the DuckDB warehouse engine's database invalidated, and DuckDB then refuses every later
statement: one analyst's query broke the warehouse's previews, estimates and (where no
read meter runs) queries for everyone until the catalog changed. The engine makes its
DuckDB again, as a sandbox pool does. As in test_sandbox_invalidated, the allocation
fails on every machine only with the address space capped, so it runs in a child."""

from __future__ import annotations

from pathlib import Path

import duckdb

from tests.server_process import child_json

CHILD = """
import json, resource, sys
_, hard = resource.getrlimit(resource.RLIMIT_AS)
cap = 6 << 30 if hard == resource.RLIM_INFINITY else min(hard, 6 << 30)
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
import sqlglot
from agnes_mcp.rails.sandbox import Limits, MemoryLimitExceeded
from agnes_mcp.rails.tables import RemoteLocation
from connectors.duckdb_warehouse import read_meter
from connectors.duckdb_warehouse.engine import DuckDBWarehouseEngine, LiteralEvaluator
from tests.conftest import remote_table

read_meter.available = lambda: False  # queries run on the engine's own DuckDB
location = RemoteLocation("wh", "warehouse", "duckdb", sys.argv[1], None, '"main"."t"')
table = remote_table("t", location, rows=10, partition_by="id")
limits = Limits(rows=100, bytes=2**26, timeout_seconds=60)
engine = DuckDBWarehouseEngine(location, memory_limit="512MB", threads=1)
seen = {}

def run(sql):
    tree = sqlglot.parse_one(sql, read="duckdb")
    return engine.execute(tree, [table], limits=limits, max_bytes=10**12, labels={})

try:
    try:
        run("SELECT reservoir_quantile(id, 0.5, 1000000000) AS q FROM t")
        seen["refused"] = None
    except MemoryLimitExceeded as exc:
        seen["refused"] = exc.details
    for name, after in [
        ("rows", lambda: run("SELECT count(*) AS n FROM t").table.to_pylist()),
        ("preview", lambda: engine.preview(table, 2, limits).table.num_rows),
        ("columns", lambda: [c.name for c in engine.describe(table)]),
    ]:
        try:
            seen[name] = after()
        except Exception as exc:  # what broke, for the assertion's message
            seen[name] = f"{type(exc).__name__}: {exc}"[:200]
finally:
    engine.close()

literals = LiteralEvaluator("512MB")
breaks = sqlglot.parse_one("reservoir_quantile(1, 0.5, 1000000000)", read="duckdb")
try:
    literals.value(breaks, "duckdb")
except ValueError as exc:
    seen["literal_refused"] = str(exc)
try:
    seen["literal"] = literals.value(sqlglot.parse_one("1 + 1", read="duckdb"), "duckdb")
except ValueError as exc:
    seen["literal"] = str(exc)
print(json.dumps(seen))
"""


def test_an_invalidated_warehouse_engine_is_made_again(tmp_path: Path) -> None:
    data = tmp_path / "wh.duckdb"
    with duckdb.connect(str(data)) as con:
        con.execute("CREATE TABLE t AS SELECT range AS id FROM range(10)")
    seen = child_json(CHILD, str(data))
    assert seen == {
        # (charged what it was estimated to read: no read meter here)
        "refused": {"limit_name": "query_memory_limit", "bytes_scanned": 262144},
        "rows": [{"n": 10}],
        "preview": 2,
        "columns": ["id"],
        "literal_refused": "not a literal: memory_limit_exceeded",
        "literal": 2,
    }
