"""Odd values render wherever a result goes: REST (JSON and Arrow), the MCP tools, the
kept-result summary. Infinite and out-of-range dates and timestamps read as DuckDB
prints them; nothing becomes an untyped error or a 500."""

from __future__ import annotations

from pathlib import Path

import duckdb
import httpx
import pyarrow as pa
import pytest
from fastmcp import Client

from agnes_mcp.mcp_server.result_store import ResultStore
from agnes_mcp.mcp_server.server import build_single_user_mcp
from agnes_mcp.mcp_server.server_backend import ServerBackend
from agnes_mcp.mcp_server.workspace_backend import WorkspaceBackend
from agnes_sync.server_api import ServerApi
from agnes_sync.workspace.layout import WorkspacePaths
from tests.conftest import DemoServer, pull_into_workspace
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


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_mcp_text_writes_values_as_duckdb_does(
    demo_server: DemoServer, anyio_backend: str
) -> None:
    """The MCP answer's text lines printed JSON's forms (2024-01-01T10:11:12.120000, True,
    1.1 for a DECIMAL(10,2), a map as a list of pairs); the column stats of a kept result
    too. They now read as DuckDB's own ``::VARCHAR`` of the same values, as the CLI's."""
    values = (
        "TIMESTAMP '2024-01-01 10:11:12.120' AS ts, TIMESTAMPTZ '2024-01-01 10:11:12+00' AS tz, "
        "1.10::DECIMAL(10,2) AS price, true AS flag, MAP {'a': 1, 'b': 2} AS m, "
        "{'t': TIMESTAMP '2024-01-01 10:00:00', 'd': 5::DECIMAL(3,1)} AS s, "
        "[0.1::FLOAT, NULL] AS l, DATE 'infinity' AS d, INTERVAL 90 MINUTE AS i"
    )
    raw = duckdb.connect()
    raw.execute("SET TimeZone = 'UTC'")
    names = [d[0] for d in raw.execute(f"SELECT {values}").description]
    expected = raw.execute(
        f"SELECT {', '.join(f'{n}::VARCHAR' for n in names)} FROM (SELECT {values})"
    ).fetchone()
    kept_sql = "SELECT TIMESTAMP '2024-01-01 10:11:12.5' + to_days(i::INT) AS ts, repeat('x', 200) AS pad FROM range(1000) t(i)"
    bounds = raw.execute(f"SELECT min(ts)::VARCHAR, max(ts)::VARCHAR FROM ({kept_sql})").fetchone()
    services = demo_server.live.services
    analyst = services.tokens.authenticate(demo_server.analyst_token)
    mcp = build_single_user_mcp(ServerBackend(services, analyst, ResultStore()))
    async with Client(mcp) as client:
        one = await client.call_tool("query", {"sql": f"SELECT {values}"})
        kept = await client.call_tool("query", {"sql": kept_sql})
    lines = one.content[0].text.split("\n")  # type: ignore[union-attr]
    header = lines.index("\t".join(names))
    assert lines[header + 1].split("\t") == list(expected)
    assert kept.structured_content is not None and kept.structured_content["result_handle"]
    stats = kept.structured_content["summary"][0]
    assert (stats["min"], stats["max"]) == bounds
    assert f"ts: nulls 0, distinct 1000, {bounds[0]}..{bounds[1]}" in kept.content[0].text  # type: ignore[union-attr]


KEPT_WIDE = (
    "SELECT HUGEINT '170141183460469231731687303715884105727' AS hmax, "
    "HUGEINT '-170141183460469231731687303715884105728' AS hmin, 7::HUGEINT AS seven, "
    "UHUGEINT '340282366920938463463374607431768211455' AS umax, "
    "[HUGEINT '170141183460469231731687303715884105727'] AS hl, "
    "{'a': UHUGEINT '340282366920938463463374607431768211455'} AS us, "
    "TIMETZ '12:00:00+05' AS tz, repeat('x', 2000) AS pad FROM range(300)"
)
READ_BACK = (
    "SELECT hmax - 1, hmin::VARCHAR, seven // 2, umax - 1, hl[1] - 1, us.a - 1, "
    "typeof(hmax), typeof(umax), typeof(tz) FROM {} LIMIT 1"
)
READ_BACK_ROW = [
    170141183460469231731687303715884105726,
    "-170141183460469231731687303715884105728",
    3,
    "340282366920938463463374607431768211454",
    170141183460469231731687303715884105726,
    "340282366920938463463374607431768211454",
    "HUGEINT",
    "UHUGEINT",
    "TIME WITH TIME ZONE",
]


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_kept_result_keeps_its_128_bit_integers(
    demo_server: DemoServer, anyio_backend: str
) -> None:
    """A HUGEINT travels as an Arrow decimal128(38, 0) and a UHUGEINT as text; a kept
    result read back gets their types again: its 39-digit values take arithmetic (a
    DECIMAL(38, 0) overflowed on them, and its text cast was an internal error), integer
    division stays integer (7 // 2 was 3.5), a UHUGEINT is a number again, in lists and
    structs too."""
    services = demo_server.live.services
    analyst = services.tokens.authenticate(demo_server.analyst_token)
    mcp = build_single_user_mcp(ServerBackend(services, analyst, ResultStore()))
    async with Client(mcp) as client:
        first = await client.call_tool("query", {"sql": KEPT_WIDE}, raise_on_error=False)
        assert first.structured_content is not None, first.content
        handle = first.structured_content["result_handle"]
        assert str(handle).startswith("result_")
        again = await client.call_tool(
            "query", {"sql": READ_BACK.format(handle)}, raise_on_error=False
        )
    assert not again.is_error, again.content[0].text  # type: ignore[union-attr]
    assert again.structured_content is not None
    assert again.structured_content["rows"][0] == READ_BACK_ROW


def test_a_result_kept_in_a_workspace_keeps_its_128_bit_integers(
    demo_server: DemoServer, tmp_path: Path
) -> None:
    """The same in a workspace, whose kept results are parquet files read by DuckDB."""
    root = pull_into_workspace(demo_server.live.base_url, demo_server.analyst_token, tmp_path)
    backend = WorkspaceBackend(
        WorkspacePaths(root), ServerApi(demo_server.live.base_url, demo_server.analyst_token)
    )
    try:
        answer = backend.query(KEPT_WIDE, 300)
        handle = backend.keep_result(answer.table, answer)
        again = backend.query(READ_BACK.format(handle), 1)
    finally:
        backend.close()
    assert again.table.to_pylist()[0] == dict(
        zip(again.table.column_names, READ_BACK_ROW, strict=True)
    )
