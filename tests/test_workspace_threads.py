"""A workspace query that reads only small tables (one file of at most one row group by
the manifest's count) runs in a single-threaded twin of the workspace's sandbox, as the
server's do; a large table, one of unknown size or one in several files gets every
thread. Real parquet, real DuckDB."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agnes_mcp.query.workspace_query import WorkspaceLimits, WorkspaceQuery
from agnes_mcp.rails.sandbox import Limits, Sandbox
from agnes_mcp.rails.sandbox_pool import ROW_GROUP_ROWS
from agnes_sync.workspace.layout import WorkspacePaths
from tests.parquet_files import write_ids


@pytest.fixture
def local(tmp_path: Path) -> Iterator[WorkspaceQuery]:
    paths = WorkspacePaths(tmp_path / "ws").ensure()
    for name in ("products", "orders", "notes"):
        write_ids(paths.data / f"{name}.parquet", 20)
    for part in ("month=01", "month=02"):
        write_ids(paths.data / "parts" / part / "part-0.parquet", 20)
    tables = [
        {"id": "products", "rows": 20},
        {"id": "orders", "rows": ROW_GROUP_ROWS + 1},  # the server's count: large
        {"id": "parts", "rows": 40},  # small, in two files: DuckDB reads them side by side
    ]  # notes: no count in the manifest
    paths.manifest.write_text(json.dumps({"tables": tables}))
    query = WorkspaceQuery(paths, WorkspaceLimits(threads=2))
    yield query
    query.close()


@pytest.fixture
def used(monkeypatch: pytest.MonkeyPatch) -> list[Sandbox]:
    """Every sandbox a workspace query ran in."""
    seen: list[Sandbox] = []
    run = Sandbox.run

    def spied(self: Sandbox, sql: str, limits: Limits, **options: Any) -> object:
        seen.append(self)
        return run(self, sql, limits, **options)

    monkeypatch.setattr(Sandbox, "run", spied)
    return seen


def _threads(box: Sandbox) -> int:
    cursor = box.connection.cursor()
    try:
        row = cursor.execute("SELECT current_setting('threads')").fetchone()
    finally:
        cursor.close()
    assert row is not None
    return int(row[0])


def test_small_reads_take_the_single_threaded_twin(
    local: WorkspaceQuery, used: list[Sandbox]
) -> None:
    assert local.run("SELECT count(*) FROM products", None).table.column(0)[0].as_py() == 20
    assert local.run("SELECT 42", None).table.num_rows == 1  # no table: small too
    local.run("SELECT count(*) FROM orders", None)
    local.run("SELECT count(*) FROM notes", None)
    local.run("SELECT count(*) FROM products JOIN orders USING (id)", None)
    assert local.run("SELECT count(*) FROM parts", None).table.column(0)[0].as_py() == 40
    twin, no_table, large, unknown, mixed, two_files = used
    assert _threads(twin) == 1 and no_table is twin
    assert _threads(large) == 2 and unknown is large and mixed is large and two_files is large
    assert large is not twin


def test_a_change_on_disk_replaces_the_twin_too(local: WorkspaceQuery, used: list[Sandbox]) -> None:
    local.run("SELECT count(*) FROM products", None)
    write_ids(local.paths.data / "customers.parquet", 3)
    assert local.run("SELECT count(*) FROM products", None).table.column(0)[0].as_py() == 20
    first, second = used
    assert second is not first and _threads(second) == 1
