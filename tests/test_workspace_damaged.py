"""A pulled file damaged on disk: the refusal says what mends it in a workspace (a pull,
which checks every file against the server's hash), not "after its next sync"."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agnes_mcp.query.workspace_query import WorkspaceQuery
from agnes_mcp.rails.arrow_sources import TableUnavailable
from agnes_sync.workspace import local_db
from agnes_sync.workspace.layout import WorkspacePaths
from tests.conftest import DemoServer, pull_into_workspace


def test_a_damaged_file_in_a_workspace_points_at_a_pull(tmp_path: Path) -> None:
    data = tmp_path / ".agnes" / "data"
    data.mkdir(parents=True)
    pq.write_table(pa.table({"n": [1, 2, 3]}), data / "products.parquet")
    with (data / "products.parquet").open("ab") as damaged:
        damaged.write(b"garbage")
    query = WorkspaceQuery(WorkspacePaths(tmp_path))
    with pytest.raises(TableUnavailable) as refused:
        query.run("SELECT count(*) FROM products", None)
    assert "agnes pull" in (refused.value.hint or "") and "sync" not in (refused.value.hint or "")
    assert refused.value.next_step == {"tool": None, "arguments": {}, "cli": "agnes pull"}


def test_a_damaged_file_of_one_table_leaves_the_others_readable(tmp_path: Path) -> None:
    """Every view of the workspace was made at once: one damaged file refused every local
    query ("The data of table 'products' ..." for a query of customers), and made the
    rebuild of agnes.duckdb (a pull whose download of it failed) raise DuckDB's own error.
    Only what reads that table is refused now; the rebuild leaves it out until it reads."""
    paths = WorkspacePaths(tmp_path)
    paths.data.mkdir(parents=True)
    pq.write_table(pa.table({"n": [1, 2, 3]}), paths.data / "customers.parquet")
    pq.write_table(pa.table({"n": [4]}), paths.data / "products.parquet")
    local_db.rebuild(paths)
    (paths.data / "products.parquet").write_bytes(b"stale")  # changed by hand
    query = WorkspaceQuery(paths)
    assert query.run("SELECT count(*) AS n FROM customers", None).table.to_pylist() == [{"n": 3}]
    for sql in ("SELECT * FROM products", "SELECT * FROM customers, products"):
        with pytest.raises(TableUnavailable) as refused:
            query.run(sql, None)
        assert "'products'" in refused.value.message
        assert refused.value.details["table"] == "products"
    with pytest.raises(TableUnavailable):
        query.columns("products")
    local_db.rebuild(paths)
    con = duckdb.connect(str(paths.db), read_only=True)
    try:
        views = {
            r[0]
            for r in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
        }
    finally:
        con.close()
    assert views == {"customers"}  # the damaged table's old view went too
    pq.write_table(pa.table({"n": [5, 6]}), paths.data / "products.parquet")  # mended
    local_db.rebuild(paths)
    assert query.run("SELECT count(*) AS n FROM products", None).table.to_pylist() == [{"n": 2}]


def test_a_partitioned_table_missing_a_part_is_refused_until_a_pull_fetches_it(
    demo_server: DemoServer, tmp_path: Path
) -> None:
    """A pull that failed on one new partition (or was stopped before it) left the table's
    other parts in place, and a query counted them as the whole table: 97,000 orders of
    100,000, said as the answer. The manifest the pull wrote lists every part; a query of
    a table missing one is refused (table_unavailable, run agnes pull) until it is back."""
    base, token = demo_server.live.base_url, demo_server.analyst_token
    paths = WorkspacePaths(pull_into_workspace(base, token, tmp_path / "ws"))
    query = WorkspaceQuery(paths)
    whole = query.run("SELECT count(*) AS n FROM orders", None).table.to_pylist()
    parts = sorted((paths.data / "orders").glob("*/*.parquet"))
    assert len(parts) > 1
    shutil.rmtree(parts[-1].parent)  # the newest month: what a failed pull leaves out
    with pytest.raises(TableUnavailable) as refused:
        query.run("SELECT count(*) AS n FROM orders", None)
    assert f"1 of its {len(parts)} parts was not pulled" in refused.value.message
    assert refused.value.details["table"] == "orders"
    assert refused.value.details["missing_parts"] == 1
    assert refused.value.next_step == {"tool": None, "arguments": {}, "cli": "agnes pull"}
    assert query.run("SELECT count(*) AS n FROM customers", None).table.num_rows == 1
    pull_into_workspace(base, token, paths.root)
    assert query.run("SELECT count(*) AS n FROM orders", None).table.to_pylist() == whole
