"""A query that makes DuckDB fail internally (an allocation inside an aggregate) leaves
the sandbox's database invalidated: DuckDB then answers every later statement "database
has been invalidated". Such a sandbox is retired and the next query gets a new one, so
one analyst's query cannot break the tables for everyone who shares its sandbox.

Whether the allocation fails depends on the machine (DuckDB asks for the whole sample at
once, and the kernel may grant 8 GB it never touches), so the pool runs in a child
process whose address space is capped: there it fails on every machine, as it does on a
server run under a memory limit."""

from __future__ import annotations

from pathlib import Path

import duckdb

from tests.server_process import child_json

# DuckDB 2.0 allocates the whole sample for each group: 10^9 doubles (8 GB) cannot fit in
# the child's 6 GiB of address space.
BREAKS = "SELECT reservoir_quantile(id, 0.5, 1000000000) AS q FROM t"
CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
from agnes_mcp.rails.sandbox import Limits, MemoryLimitExceeded
from agnes_mcp.rails.sandbox_pool import SandboxPool
from tests.conftest import local_table

data, breaks = sys.argv[1], sys.argv[2]
limits = Limits(rows=100, bytes=2**26, timeout_seconds=60)
tables = [local_table("t", data)]
pool = SandboxPool(memory_limit="512MB", threads=1)
seen = {}
try:
    first = pool.get(tables, 1)
    try:
        first.run(breaks, limits)
        seen["refused"] = None
    except MemoryLimitExceeded as exc:
        seen["refused"] = exc.details
    seen["first_retired"] = first.retired
    second = pool.get(tables, 1)
    seen["new"] = second is not first and not second.retired
    seen["rows"] = second.run("SELECT count(*) AS n FROM t", limits).table.to_pylist()
    seen["kept"] = pool.get(tables, 1) is second
finally:
    pool.close()
print(json.dumps(seen))
"""


def test_an_invalidated_sandbox_is_made_again(tmp_path: Path) -> None:
    data = tmp_path / "t.parquet"
    duckdb.sql(f"COPY (SELECT range AS id FROM range(10)) TO '{data}'")
    seen = child_json(CHILD, str(data), BREAKS)
    assert seen == {
        "refused": {"limit_name": "query_memory_limit"},
        "first_retired": True,
        "new": True,
        "rows": [{"n": 10}],
        "kept": True,
    }
