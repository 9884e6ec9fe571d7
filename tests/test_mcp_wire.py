"""The tools over real transports with the official ``mcp`` client: streamable HTTP against
the demo server, and stdio against ``agnes mcp`` spawned in a workspace."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from tests.cli_harness import limited_command
from tests.conftest import DemoServer, empty_workspace, pull_into_workspace

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def over_http(demo: DemoServer, token: str) -> AsyncIterator[ClientSession]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
        streamable_http_client(f"{demo.live.base_url}/mcp", http_client=http) as streams,
        ClientSession(streams[0], streams[1]) as session,
    ):
        await session.initialize()
        yield session


@asynccontextmanager
async def over_stdio(
    demo: DemoServer, token: str, workspace: Path, *, file_size_limit: int | None = None
) -> AsyncIterator[ClientSession]:
    empty_workspace(workspace)  # `agnes mcp` serves a workspace; a pulled one stays as it is
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGNES_")}
    env.update(
        AGNES_SERVER_URL=demo.live.base_url,
        AGNES_TOKEN=token,
        AGNES_CONFIG_HOME=str(workspace / ".config"),
        PYTHONPATH=str(REPO),
    )
    command = [sys.executable, "-m", "cli.main", "mcp"]
    if file_size_limit is not None:
        command = limited_command(file_size_limit, "mcp")
    parameters = StdioServerParameters(command=command[0], args=command[1:], env=env, cwd=workspace)
    async with (
        stdio_client(parameters) as streams,
        ClientSession(streams[0], streams[1]) as session,
    ):
        await session.initialize()
        yield session


async def test_tools_over_streamable_http(demo_server: DemoServer) -> None:
    async with over_http(demo_server, demo_server.analyst_token) as session:
        names = {t.name for t in (await session.list_tools()).tools}
        assert {
            "catalog",
            "query",
            "query_remote",
            "metric_query",
        } <= names and "disk_info" not in names
        result = await session.call_tool("query", {"sql": "SELECT count(*) AS n FROM customers"})
        assert not result.is_error and result.structured_content is not None
        assert result.structured_content["rows"][0][0] > 0
        assert result.structured_content["provenance"]["engine"] == "duckdb (server)"
        remote = await session.call_tool(
            "query_remote",
            {"sql": "SELECT count(*) FROM web_sessions WHERE event_date = DATE '2025-01-01'"},
        )
        assert not remote.is_error and remote.structured_content["bytes_scanned"] > 0
        denied = await session.call_tool("query", {"sql": "SELECT * FROM support_tickets"})
        assert denied.is_error and denied.structured_content["error"]["code"] == "table_not_found"
        assert "support_tickets" in denied.content[0].text
        kept = await session.call_tool("query", {"sql": "SELECT * FROM orders"})
        handle = kept.structured_content["result_handle"]
        again = await session.call_tool("query", {"sql": f"SELECT count(*) FROM {handle}"})
        assert not again.is_error and again.structured_content["rows"] == [[1000]]


async def test_result_handles_belong_to_their_token(demo_server: DemoServer) -> None:
    async with over_http(demo_server, demo_server.analyst_token) as session:
        kept = await session.call_tool("query", {"sql": "SELECT * FROM orders"})
        handle = kept.structured_content["result_handle"]
    async with over_http(demo_server, demo_server.admin_token) as other:
        foreign = await other.call_tool("query", {"sql": f"SELECT count(*) FROM {handle}"})
        assert foreign.is_error and foreign.structured_content["error"]["code"] == "table_not_found"
    # the REST API reads them by the same token (an analyst's script after their agent)
    sql = {"sql": f"SELECT count(*) AS n FROM {handle}"}
    with demo_server.client("analyst") as analyst:
        read = analyst.post("/api/query", json=sql)
        assert read.status_code == 200, read.text
        assert read.json()["rows"] == [[1000]]
    with demo_server.client("admin") as admin:
        refused = admin.post("/api/query", json=sql)
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "table_not_found"


async def test_tools_over_stdio_in_a_workspace(demo_server: DemoServer, tmp_path: Path) -> None:
    workspace = pull_into_workspace(demo_server.live.base_url, demo_server.analyst_token, tmp_path)
    async with over_stdio(demo_server, demo_server.analyst_token, workspace) as session:
        names = {t.name for t in (await session.list_tools()).tools}
        assert "disk_info" in names and "query" in names
        local = await session.call_tool("query", {"sql": "SELECT count(*) AS n FROM orders"})
        assert not local.is_error, local.content
        assert local.structured_content["provenance"]["engine"] == "duckdb (workspace)"
        remote = await session.call_tool(
            "query_remote", {"sql": "SELECT count(DISTINCT device) FROM web_sessions"}
        )
        assert not remote.is_error and remote.structured_content["bytes_scanned"] > 0
        needs = await session.call_tool("query", {"sql": "SELECT * FROM web_sessions"})
        assert (
            needs.is_error
            and needs.structured_content["error"]["code"] == "remote_table_needs_snapshot"
        )
        disk = await session.call_tool("disk_info", {})
        assert disk.structured_content["tables"] == 6


async def test_stdio_on_a_disk_refusing_writes_answers_typed(
    demo_server: DemoServer, tmp_path: Path
) -> None:
    """A snapshot or a kept result the workspace's disk cannot hold is a refusal naming
    the folder and the reason, not "Error calling tool" with the text masked."""
    workspace = tmp_path / "ws"
    async with over_stdio(
        demo_server, demo_server.analyst_token, workspace, file_size_limit=2_000
    ) as session:
        taken = await session.call_tool(
            "snapshot_create",
            {
                "table": "web_sessions",
                "select": ["session_id", "device"],
                "where": "event_date >= DATE '2026-10-01'",
                "name": "october",
            },
        )
        kept = await session.call_tool(
            "query", {"sql": "SELECT range AS n FROM range(50000)", "limit": 50000}
        )
        for refused in (taken, kept):
            assert refused.is_error and refused.structured_content is not None, refused.content
            error = refused.structured_content["error"]
            assert error["code"] == "workspace_unwritable", error
            assert "File too large" in error["message"] and str(workspace) in error["message"]
        listed = await session.call_tool("snapshot_list", {})
        assert listed.structured_content == {"snapshots": []}  # nothing half-written kept
    assert not list((workspace / ".agnes" / "snapshots").glob("*.parquet"))


async def test_stdio_with_a_bad_token_refuses_what_needs_the_server(
    demo_server: DemoServer, tmp_path: Path
) -> None:
    async with over_stdio(demo_server, "agnes_abcdefghij_" + "x" * 43, tmp_path) as session:
        catalog = await session.call_tool("catalog", {})
        assert catalog.is_error and catalog.structured_content["error"]["code"] == "token_invalid"
        remote = await session.call_tool("query_remote", {"sql": "SELECT 1 FROM web_sessions"})
        assert remote.is_error and remote.structured_content["error"]["code"] == "token_invalid"
        local = await session.call_tool("query", {"sql": "SELECT * FROM orders"})
        assert local.is_error and local.structured_content["error"]["code"] == "table_not_found"
