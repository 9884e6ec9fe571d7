"""A query that makes DuckDB fail internally (an allocation inside an aggregate) leaves
the sandbox's database invalidated: DuckDB then answers every later statement "database
has been invalidated". Such a sandbox is retired and the next query gets a new one, so
one analyst's query cannot break the tables for everyone who shares its sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from agnes_mcp.rails.sandbox import Limits, MemoryLimitExceeded
from agnes_mcp.rails.sandbox_pool import SandboxPool
from tests.conftest import DemoServer, local_table, running_demo

LIMITS = Limits(rows=100, bytes=2**26, timeout_seconds=60)
# DuckDB 2.0 allocates the whole sample for each group: 10^9 doubles fail inside DuckDB
BREAKS = "SELECT reservoir_quantile(id, 0.5, 1000000000) AS q FROM t"


def test_an_invalidated_sandbox_is_made_again(tmp_path: Path) -> None:
    data = tmp_path / "t.parquet"
    duckdb.sql(f"COPY (SELECT range AS id FROM range(10)) TO '{data}'")
    tables = [local_table("t", data)]
    pool = SandboxPool(memory_limit="512MB", threads=1)
    try:
        first = pool.get(tables, 1)
        with pytest.raises(MemoryLimitExceeded) as caught:
            first.run(BREAKS, LIMITS)
        assert caught.value.details == {"limit_name": "query_memory_limit"}
        assert first.retired
        second = pool.get(tables, 1)
        assert second is not first and not second.retired
        assert second.run("SELECT count(*) AS n FROM t", LIMITS).table.to_pylist() == [{"n": 10}]
        assert pool.get(tables, 1) is second
    finally:
        pool.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with running_demo(tmp_path_factory.mktemp("invalidated-demo")) as server:
        yield server


def test_one_query_cannot_break_the_tables_for_everyone(demo: DemoServer) -> None:
    breaks = "SELECT reservoir_quantile(order_id, 0.5, 1000000000) AS q FROM orders"
    with demo.client() as analyst, demo.client("admin") as admin:
        refused = analyst.post("/api/query", json={"sql": breaks})
        after = [
            client.post("/api/query", json={"sql": "SELECT count(*) AS n FROM orders"})
            for client in (analyst, admin, analyst)
        ]
    for answer in after:  # were 400 "database has been invalidated" until a restart
        assert answer.status_code == 200, answer.text
        assert answer.json()["rows"][0][0] > 0
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "memory_limit_exceeded"
