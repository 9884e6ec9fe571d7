"""INTERVAL values in what a workspace writes to parquet itself: a result too large to
show (kept for the agent) and a snapshot. pyarrow cannot write an Arrow interval, and the
MCP query tool failed as an internal error ("Error calling tool 'query'")."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest
from fastmcp import Client

from agnes_mcp.mcp_server.server import build_single_user_mcp
from agnes_mcp.mcp_server.workspace_backend import WorkspaceBackend
from agnes_sync.server_api import ServerApi
from agnes_sync.snapshot_files import SnapshotFiles
from agnes_sync.snapshot_meta import SnapshotMeta
from agnes_sync.workspace.layout import WorkspacePaths
from tests.conftest import empty_workspace

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_kept_result_holding_intervals_is_kept_and_reads_back(
    tmp_path: Path, anyio_backend: str
) -> None:
    folder = empty_workspace(tmp_path / "ws")
    paths = WorkspacePaths(folder)
    target = paths.data / "waits.parquet"
    duckdb.sql(
        "COPY (SELECT range AS id, INTERVAL (range) MINUTE AS waited FROM range(20000)) "
        f"TO '{target}' (FORMAT parquet)"
    )
    backend = WorkspaceBackend(paths, ServerApi(UNREACHABLE, "agnes_x_y"))
    try:
        async with Client(build_single_user_mcp(backend)) as client:
            answer = await client.call_tool(
                "query", {"sql": "SELECT id, waited FROM waits"}, raise_on_error=False
            )
    finally:
        backend.close()
    assert not answer.is_error, answer.content[0].text  # type: ignore[union-attr]
    (kept,) = paths.results.glob("result_*.parquet")
    assert duckdb.sql(f"SELECT max(waited), typeof(max(waited)) FROM '{kept}'").fetchall() == [
        (dt.timedelta(minutes=999), "INTERVAL")  # the default limit: 1,000 rows
    ]


def test_a_snapshot_keeps_every_digit_of_an_interval(tmp_path: Path) -> None:
    """Parquet's INTERVAL holds milliseconds: a finer value is kept as its exact text."""
    rows = duckdb.sql(
        "SELECT INTERVAL '1 month 2 days 00:00:01.5' AS coarse, INTERVAL '00:00:01.234567' AS fine"
    ).to_arrow_table()
    meta = SnapshotMeta(
        name="s",
        table_id="t",
        select=["coarse", "fine"],
        where=None,
        order_by=[],
        limit=None,
        sql="",
        created_at=dt.datetime.now(dt.UTC),
        rows=0,
        bytes=0,
        ttl_seconds=None,
    )
    files = SnapshotFiles(tmp_path)
    files.save(rows, meta)
    read = duckdb.sql(
        f"SELECT coarse, typeof(coarse), fine FROM '{files.data_path('s')}'"
    ).fetchall()
    assert read == [(dt.timedelta(days=32, seconds=1.5), "INTERVAL", "00:00:01.234567")]


@pytest.mark.parametrize("strategy", ["full_refresh", "incremental"])
def test_a_synced_interval_keeps_its_microseconds(tmp_path: Path, strategy: str) -> None:
    """Parquet's INTERVAL holds milliseconds: DuckDB published 00:00:01.234567 as
    00:00:01.234 without a word. Such a column is published as its exact text, and the
    sync's notes say so; one whose values parquet holds stays INTERVAL."""
    from agnes_sync import strategies
    from agnes_sync.connector import TableRequest
    from agnes_sync.contract import ExtractWriter

    writer = ExtractWriter(tmp_path / "extracts", "s")
    request = TableRequest(
        id="waits",
        sync_strategy=strategy,
        incremental_column="id" if strategy == "incremental" else None,
    )
    source = (
        "SELECT 1 AS id, INTERVAL '00:00:01.234567' AS fine, INTERVAL '1 day 00:00:00.5' AS coarse"
    )
    published = strategies.run(duckdb.connect(), source, request, writer)
    con = duckdb.connect(str(writer.paths.db), read_only=True)
    try:
        row = con.execute("SELECT fine, coarse, typeof(coarse) FROM waits").fetchall()
    finally:
        con.close()
    assert row == [("00:00:01.234567", dt.timedelta(days=1, seconds=0.5), "INTERVAL")]
    (said,) = [n for n in published.notes if "interval" in n]
    assert said.endswith("rounded: fine")


def test_a_partitioned_sync_refuses_an_interval_it_would_round(tmp_path: Path) -> None:
    from agnes_sync import strategies
    from agnes_sync.connector import TableRequest
    from agnes_sync.contract import ExtractWriter
    from agnes_sync.errors import SourceDataError

    request = TableRequest(
        id="waits",
        sync_strategy="partitioned",
        partition_by="day",
        partition_granularity="month",
    )
    source = "SELECT DATE '2026-01-01' AS day, INTERVAL '00:00:01.234567' AS fine"
    with pytest.raises(SourceDataError) as refused:
        strategies.run(duckdb.connect(), source, request, ExtractWriter(tmp_path, "s"))
    assert "Column 'fine'" in refused.value.message and refused.value.details == {"column": "fine"}
