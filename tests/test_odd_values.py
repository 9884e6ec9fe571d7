"""Odd values render wherever a result goes: REST (JSON and Arrow), the MCP tools, the
kept-result summary. Infinite and out-of-range dates and timestamps read as DuckDB
prints them; nothing becomes an untyped error or a 500."""

from __future__ import annotations

import httpx
import pyarrow as pa
import pytest
from fastmcp import Client

from agnes_mcp.mcp_server.result_store import ResultStore
from agnes_mcp.mcp_server.server import build_single_user_mcp
from agnes_mcp.mcp_server.server_backend import ServerBackend
from tests.conftest import DemoServer
from tests.rails_corpus import ODD_VALUE_CASES

IDS = [f"{i:02d}" for i in range(len(ODD_VALUE_CASES))]


@pytest.fixture(scope="module")
def analyst(demo_server: DemoServer) -> httpx.Client:
    return demo_server.client()


@pytest.mark.parametrize(("sql", "shown"), ODD_VALUE_CASES, ids=IDS)
def test_rest_renders_every_value(analyst: httpx.Client, sql: str, shown: str | None) -> None:
    answer = analyst.post("/api/query", json={"sql": sql, "limit": 5})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["row_count"] >= 1
    if shown is not None:
        assert body["rows"][0][-1] == shown
    arrow = analyst.post(
        "/api/query",
        json={"sql": sql, "limit": 5},
        headers={"Accept": "application/vnd.apache.arrow.stream"},
    )
    assert arrow.status_code == 200
    assert pa.ipc.open_stream(arrow.content).read_all().num_rows == body["row_count"]


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize(("sql", "shown"), ODD_VALUE_CASES, ids=IDS)
async def test_the_mcp_query_tool_renders_every_value(
    demo_server: DemoServer, sql: str, shown: str | None, anyio_backend: str
) -> None:
    services = demo_server.live.services
    analyst = services.tokens.authenticate(demo_server.analyst_token)
    mcp = build_single_user_mcp(ServerBackend(services, analyst, ResultStore()))
    async with Client(mcp) as client:
        result = await client.call_tool("query", {"sql": sql}, raise_on_error=False)
    assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
    if shown is not None:
        assert result.structured_content is not None
        assert result.structured_content["rows"][0][-1] == shown


def test_a_kept_result_of_odd_values_is_summarised(analyst: httpx.Client) -> None:
    sql = "SELECT DATE 'infinity' - CAST(i AS INTEGER) AS d, repeat('x', 300) AS pad FROM range(400) t(i)"
    body = analyst.post("/api/query", json={"sql": sql, "limit": 400}).json()
    assert body["rows"][0][0] == "infinity" and body["row_count"] == 400


def test_decimals_keep_every_digit(analyst: httpx.Client) -> None:
    """A DECIMAL is a JSON number where one says it exactly, else its text: a 38-digit
    value never comes back as a float with digits lost."""
    sql = (
        "SELECT 12345678901234567890123456789.123456789::DECIMAL(38,9) AS big, "
        "12.34::DECIMAL(10,2) AS small, 98765432109876543210::DECIMAL(38,0) AS whole"
    )
    body = analyst.post("/api/query", json={"sql": sql}).json()
    assert body["rows"][0] == [
        "12345678901234567890123456789.123456789",
        12.34,
        98765432109876543210,
    ]
