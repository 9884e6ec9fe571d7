"""The MCP tool surface, in process, over both backends: the server's (the caller's grants
on the server) and a workspace's (pulled parquet, local snapshots, the server for the
rest). Every test body runs against both unless the behaviour is one backend's own."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client, FastMCP
from jsonschema import Draft202012Validator

from agnes_mcp.mcp_server import output_budget as ob
from agnes_mcp.mcp_server.guidance import CATALOG_RESOURCE_TABLES, whole_json
from agnes_mcp.mcp_server.result_store import ResultStore
from agnes_mcp.mcp_server.server import build_single_user_mcp
from agnes_mcp.mcp_server.server_backend import ServerBackend
from agnes_mcp.mcp_server.workspace_backend import WorkspaceBackend
from agnes_sync.server_api import ArgumentTooLong, ServerApi
from agnes_sync.workspace.layout import WorkspacePaths
from tests.conftest import DemoServer, pull_into_workspace

pytestmark = pytest.mark.anyio
KINDS = ["server", "workspace"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Surface:
    kind: str
    mcp: FastMCP
    workspace: Path | None = None

    @asynccontextmanager
    async def client(self) -> AsyncIterator[Client]:
        async with Client(self.mcp) as client:
            yield client


@pytest.fixture(scope="module")
def surfaces(
    demo_server: DemoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Surface]]:
    services = demo_server.live.services
    analyst = services.tokens.authenticate(demo_server.analyst_token)
    server = build_single_user_mcp(ServerBackend(services, analyst, ResultStore()), name="server")
    folder = pull_into_workspace(
        demo_server.live.base_url, demo_server.analyst_token, tmp_path_factory.mktemp("workspace")
    )
    backend = WorkspaceBackend(
        WorkspacePaths(folder), ServerApi(demo_server.live.base_url, demo_server.analyst_token)
    )
    yield {
        "server": Surface("server", server),
        "workspace": Surface("workspace", build_single_user_mcp(backend), folder),
    }
    backend.close()


@pytest.fixture(params=KINDS)
def surface(request: pytest.FixtureRequest, surfaces: dict[str, Surface]) -> Surface:
    return surfaces[request.param]


async def call(surface: Surface, tool: str, **arguments: Any) -> tuple[dict[str, Any], str, bool]:
    """Call ``tool``; its structured content, answer or refusal, must match the tool's
    output schema, as a client that checks error results too (the TypeScript SDK's) asks."""
    async with surface.client() as client:
        result = await client.call_tool(tool, arguments, raise_on_error=False)
        schemas = {t.name: t.output_schema for t in await client.list_tools()}
    text = result.content[0].text if result.content else ""
    structured = result.structured_content or {}
    schema = schemas.get(tool)
    if schema is not None:
        Draft202012Validator(schema).validate(structured)
    return structured, text, result.is_error


async def ok(surface: Surface, tool: str, **arguments: Any) -> tuple[dict[str, Any], str]:
    structured, text, error = await call(surface, tool, **arguments)
    assert not error, text
    return structured, text


async def refused(surface: Surface, tool: str, **arguments: Any) -> dict[str, Any]:
    structured, text, error = await call(surface, tool, **arguments)
    assert error, text
    assert text.startswith(f"error {structured['error']['code']}:")
    return structured["error"]  # type: ignore[no-any-return]


def within_ceiling(structured: dict[str, Any], text: str) -> None:
    assert len(text) + len(ob.dumps(structured)) <= ob.CEILING_CHARS


# --- one surface ------------------------------------------------------------------------------


async def test_both_backends_offer_the_same_tools(surfaces: dict[str, Surface]) -> None:
    described = {}
    for kind, surface in surfaces.items():
        async with surface.client() as client:
            tools = await client.list_tools()
        described[kind] = {
            t.name: {
                "title": t.title,
                "description": t.description,
                "input": t.input_schema,
                "output": t.output_schema,
                "annotations": t.annotations.model_dump(by_alias=True) if t.annotations else None,
            }
            for t in tools
        }
    assert set(described["workspace"]) - set(described["server"]) == {"disk_info"}
    for name, server_tool in described["server"].items():
        assert described["workspace"][name] == server_tool, name
    assert {
        "catalog",
        "schema",
        "describe",
        "query",
        "query_remote",
        "snapshot_estimate",
        "snapshot_create",
        "snapshot_list",
        "snapshot_drop",
        "metrics_list",
        "metric_show",
        "metric_query",
    } <= set(described["server"])
    for name, tool in described["server"].items():
        assert tool["title"] and tool["description"] and tool["output"], name
        hints = tool["annotations"]
        assert hints is not None and None not in (
            hints["readOnlyHint"],
            hints["destructiveHint"],
            hints["idempotentHint"],
            hints["openWorldHint"],
        ), name
    assert described["server"]["snapshot_drop"]["annotations"]["destructiveHint"] is True
    assert described["server"]["query"]["annotations"]["readOnlyHint"] is True
    assert described["server"]["query_remote"]["annotations"]["openWorldHint"] is True


async def test_catalog_lists_granted_tables_and_metrics(surface: Surface) -> None:
    structured, text = await ok(surface, "catalog")
    tables = {t["id"]: t for t in structured["tables"]}
    assert "orders" in tables and "support_tickets" not in tables
    assert structured["total_tables"] == len(tables) == 7
    remote = tables["web_sessions"]
    assert remote["location"] == "remote" and remote["partition_by"] == "event_date"
    assert "query_remote" in remote["how_to_fetch"] and remote["engine"] == "duckdb"
    assert tables["orders"]["freshness"] and tables["orders"]["rows"] > 0
    ids = {m["id"] for m in structured["metrics"]}
    assert "revenue/mrr" in ids and "operations/support_resolution_time" not in ids
    assert "orders [local;" in text and "Metrics:" in text
    if surface.kind == "workspace":
        assert tables["orders"]["in_workspace"] is True
        assert tables["web_sessions"]["in_workspace"] is False
    else:
        assert tables["orders"]["in_workspace"] is None
    remote_only, _ = await ok(surface, "catalog", query_mode="remote")
    assert [t["id"] for t in remote_only["tables"]] == ["web_sessions"]


async def test_schema_and_describe(surface: Surface) -> None:
    structured, text = await ok(surface, "schema", table="orders")
    columns = {c["name"]: c for c in structured["columns"]}
    assert columns["order_date"]["type"] == "DATE"
    assert columns["status"]["stats"]["distinct_estimate"] >= 3
    assert structured["total_columns"] == len(columns) and not structured["truncated"]
    assert "order_date DATE" in text
    # a remote table's stats hold only its range (storage metadata): nothing unknown is said
    remote_schema, remote_text = await ok(surface, "schema", table="web_sessions")
    dated = {c["name"]: c for c in remote_schema["columns"]}["event_date"]["stats"]
    assert dated["min"] and dated["null_share"] is None
    line = next(x for x in remote_text.splitlines() if x.startswith("event_date "))
    assert "None" not in remote_text and f"({dated['min']}..{dated['max']})" in line
    rows, text = await ok(surface, "describe", table="orders", n=3)
    assert rows["shown_rows"] == rows["row_count"] == 3 and len(rows["rows"]) == 3
    remote, _ = await ok(surface, "describe", table="web_sessions", n=4)
    assert remote["row_count"] == 4 and remote["bytes_scanned"] == 0
    # named as a query of the table names its engine (was "duckdb (preview)")
    assert remote["provenance"]["engine"] == "duckdb_warehouse (preview)"
    assert "session_id" in [c["name"] for c in remote["columns"]]


async def test_query_result_shape_and_provenance(surface: Surface) -> None:
    structured, text = await ok(
        surface, "query", sql="SELECT status, count(*) AS n FROM orders GROUP BY 1 ORDER BY 1"
    )
    assert [c["name"] for c in structured["columns"]] == ["status", "n"]
    assert [r[0] for r in structured["rows"]] == ["cancelled", "completed", "refunded"]
    assert structured["row_count"] == structured["shown_rows"] == 3
    assert structured["truncated"] is False and structured["result_handle"] is None
    assert structured["reason"] is None and structured["row_limit"] == 1000  # ran with, not cut
    provenance = structured["provenance"]
    assert (
        provenance["tables"][0]["id"] == "orders"
        and provenance["tables"][0]["query_mode"] == "local"
    )
    assert provenance["engine"] == (
        "duckdb (server)" if surface.kind == "server" else "duckdb (workspace)"
    )
    assert len(provenance["fingerprint"]) == 16 and provenance["duration_ms"] >= 0
    assert "status\tn\ncancelled\t" in text


async def test_remote_table_in_query_points_at_query_remote_and_a_snapshot(
    surface: Surface,
) -> None:
    error = await refused(
        surface, "query", sql="SELECT device, count(*) FROM web_sessions GROUP BY 1"
    )
    assert error["code"] == "remote_table_needs_snapshot"
    options = error["next_step"]["options"]
    assert [o["tool"] for o in options] == ["query_remote", "snapshot_create"]
    assert (
        options[1]["arguments"]["table"] == "web_sessions"
        and "event_date" in options[1]["arguments"]["where"]
    )
    answer, text = await ok(surface, "query_remote", sql=options[0]["arguments"]["sql"])
    assert answer["bytes_scanned"] > 0 and answer["remaining_budget_bytes"] > 0
    assert answer["provenance"]["engine"] == "duckdb_warehouse" and "of daily budget left" in text


async def test_an_unknown_tool_is_a_typed_refusal(surface: Surface) -> None:
    """It was answered as bare text: an agent branching on error codes found none."""
    said = await refused(surface, "run_sql", sql="SELECT 1")
    assert said["code"] == "tool_not_found" and "'run_sql'" in said["message"]
    assert "tools/list" in said["hint"]


async def test_refusals_for_tables_not_granted(surface: Surface) -> None:
    """A table the catalog does not list for the caller was refused as 'not granted' (it
    exists) where one that does not exist was 'not found': every tool now answers both
    alike, word for word but the name (the workspace relays the server's answer)."""
    for tool, arguments in [
        ("query", {"sql": "SELECT * FROM support_tickets"}),
        ("schema", {"table": "support_tickets"}),
        ("describe", {"table": "support_tickets"}),
        ("snapshot_create", {"table": "support_tickets", "select": ["ticket_id"], "name": "x"}),
    ]:
        hidden = await refused(surface, tool, **arguments)
        ghost_arguments = {
            k: v.replace("support_tickets", "support_tickles") if isinstance(v, str) else v
            for k, v in arguments.items()
        }
        ghost = await refused(surface, tool, **ghost_arguments)
        assert hidden["code"] == "table_not_found", (tool, hidden)
        assert str(hidden).replace("support_tickets", "<t>") == str(ghost).replace(
            "support_tickles", "<t>"
        ), tool
    unknown = await refused(surface, "query", sql="SELECT * FROM orderz")
    assert unknown["code"] == "table_not_found" and "orders" in unknown["hint"]
    missing = await refused(surface, "schema", table="orderz")
    assert missing["message"] == unknown["message"] and missing["hint"] == unknown["hint"]
    for tool in ("metric_query", "metric_show"):  # a metric metrics_list does not list
        hidden = await refused(surface, tool, id="operations/support_resolution_time")
        ghost = await refused(surface, tool, id="operations/support_resolution_tame")
        assert hidden["code"] == "metric_not_found", (tool, hidden)
        assert "support_tickets" not in str(hidden)  # nor the table it reads
        assert str(hidden).replace("resolution_time", "<m>") == str(ghost).replace(
            "resolution_tame", "<m>"
        ), tool
    write = await refused(surface, "query", sql="DELETE FROM orders")
    assert write["code"] == "read_only"


async def test_every_tool_refuses_within_its_output_schema(surface: Surface) -> None:
    """Each tool's refusal is structured content its output schema describes (``call``
    checks it): against the answer alone, a client that checks error results failed every
    refused call with "Structured content does not match the tool's output schema"."""
    async with surface.client() as client:
        tools = [t.name for t in await client.list_tools()]
    for tool in tools:
        error = await refused(surface, tool, no_such_argument=1)
        assert error["code"] == "invalid_arguments", (tool, error)


async def test_arguments_that_do_not_match_the_schema_get_a_typed_refusal(
    surface: Surface,
) -> None:
    """Not pydantic's raw text: the documented error shape, each argument named."""
    listed = await refused(
        surface, "snapshot_estimate", table="web_sessions", select="session_id,device"
    )
    assert listed["code"] == "invalid_arguments" and "JSON array" in listed["hint"]
    assert [p["argument"] for p in listed["details"]["problems"]] == ["select"]
    assert 'select: Input should be a valid list (given "session_id,device")' in listed["message"]
    low = await refused(surface, "query", sql="SELECT 1", limit=0)
    assert low["code"] == "invalid_arguments" and "limit" in low["message"]
    missing = await refused(surface, "query", sqll="SELECT 1")
    names = {p["argument"] for p in missing["details"]["problems"]}
    assert missing["code"] == "invalid_arguments" and names == {"sql", "sqll"}


async def test_a_large_result_is_kept_and_summarised(surface: Surface) -> None:
    structured, text = await ok(surface, "query", sql="SELECT * FROM orders ORDER BY order_id")
    counted, _ = await ok(surface, "query", sql="SELECT count(*) AS n FROM orders")
    total = counted["rows"][0][0]
    assert total > 1000
    assert structured["row_count"] == 1000 and structured["truncated"] is True
    # The default row limit cut the answer before the output budget did: that is the
    # reason given, with the whole answer's size and what the kept result holds.
    assert structured["truncation"]["reason"] == "rows"
    assert structured["total_rows"] == total
    # the limits it ran with, in the fields the REST answer and the CLI's JSON fill too
    assert structured["reason"] == "rows" and structured["row_limit"] == 1000
    assert structured["row_limit_source"] == "default" and structured["byte_limit"] > 0
    how = structured["truncation"]["how_to_get_more"]
    assert "default" in how and "1,000" in how and f"{total:,}" in how
    assert "not the whole answer" in how
    assert f"1,000 of {total:,} rows" in text
    handle = structured["result_handle"]
    assert (
        handle
        and handle.startswith("result_")
        and handle in structured["truncation"]["how_to_get_more"]
    )
    assert 0 < structured["shown_rows"] <= ob.FIRST_ROWS
    # the text says how many of the rows it fetched it shows, not only the structured part
    assert f"(the first {structured['shown_rows']:,} shown below)" in text.splitlines()[0]
    summary = {s["name"]: s for s in structured["summary"]}
    assert summary["status"]["distinct"] == 3 and summary["order_id"]["min"] == "1"
    assert max(len(text), len(ob.dumps(structured))) <= ob.DEFAULT_CHARS
    follow, _ = await ok(
        surface, "query", sql=f"SELECT count(*) AS n, max(order_id) AS top FROM {handle}"
    )
    assert follow["rows"] == [[1000, 1000]]
    assert follow["provenance"]["tables"][0]["query_mode"] == "result"


async def test_schema_and_describe_read_a_result_handle(surface: Surface) -> None:
    """``query`` reads a result handle like a table, so ``schema`` and ``describe`` do too
    (on the server they answered table_not_found)."""
    cut, _ = await ok(
        surface, "query", sql="SELECT order_id, status, total_amount FROM orders ORDER BY 1"
    )
    handle = cut["result_handle"]
    assert handle
    schema, text = await ok(surface, "schema", table=handle)
    assert schema["table"] == handle and schema["query_mode"] == "result"
    assert [c["name"] for c in schema["columns"]] == ["order_id", "status", "total_amount"]
    assert schema["columns"][0]["type"] in {"BIGINT", "INTEGER"}
    # the kept result holds the rows the query fetched (the row limit's), not the count
    assert schema["rows"] == cut["row_count"] and "status" in text
    assert "earlier query" in schema["description"]
    sample, _ = await ok(surface, "describe", table=handle, n=3)
    assert sample["row_count"] == 3 and [c["name"] for c in sample["columns"]] == [
        "order_id",
        "status",
        "total_amount",
    ]
    assert sample["provenance"]["tables"][0]["query_mode"] == "result"
    missing = await refused(surface, "schema", table="result_0000000000")
    assert missing["code"] == "table_not_found"


async def test_a_whole_answer_too_large_to_show_is_kept_whole(surface: Surface) -> None:
    structured, text = await ok(
        surface, "query", sql="SELECT * FROM orders ORDER BY order_id LIMIT 1500", limit=1800
    )
    assert structured["row_count"] == 1500 and structured["total_rows"] == 1500
    shown = structured["shown_rows"]
    assert 0 < shown < 1500 and f"1,500 rows x 7 columns (the first {shown:,} shown" in text
    assert structured["truncation"]["reason"] == "characters"  # only the output budget cut
    handle = structured["result_handle"]
    assert "All 1,500 rows" in structured["truncation"]["how_to_get_more"]
    follow, _ = await ok(surface, "query", sql=f"SELECT count(*) AS n FROM {handle}")
    assert follow["rows"] == [[1500]]


async def test_values_shortened_for_the_view_are_said_and_readable_whole(
    surface: Surface,
) -> None:
    sql = "SELECT i, repeat('y', 1000) || i AS big, 'short' AS small FROM range(3) t(i)"
    structured, text = await ok(surface, "query", sql=sql)
    assert structured["rows"][0][1].endswith("…(+701 chars)") and structured["rows"][0][2] == (
        "short"
    )
    assert structured["truncated"] is True and structured["truncation"]["reason"] == "values"
    how = structured["truncation"]["how_to_get_more"]
    handle = structured["result_handle"]
    assert (
        "in column big)" in how
        and handle in how
        and 'substr(CAST("big" AS VARCHAR), 301, 300)' in how
    )
    assert "[truncated (values):" in text and "3 rows" in text.splitlines()[0]
    whole, _ = await ok(surface, "query", sql=f"SELECT length(big) AS n FROM {handle} ORDER BY i")
    assert whole["rows"] == [[1001], [1001], [1001]]
    # the SQL it gives runs as given, on a list column too (CAST makes any value text)
    listed, _ = await ok(surface, "query", sql="SELECT [repeat('z', 400)] AS v")
    recipe = listed["truncation"]["how_to_get_more"].split("read one in parts with ")[1]
    part, _ = await ok(surface, "query", sql=recipe.split(", or its length")[0])
    assert part["rows"][0][0].startswith("z") and part["truncated"] is False
    # cut by the row limit too: that stays the truncation, the shortening is a note
    both, _ = await ok(surface, "query", sql=sql, limit=2)
    assert both["truncation"]["reason"] == "rows" and both["result_handle"]
    assert any("shortened" in note for note in both["notes"])
    # nothing long: nothing said
    plain, _ = await ok(surface, "query", sql="SELECT repeat('y', 300) AS v")
    assert plain["truncated"] is False and plain["truncation"] is None


async def test_a_shortened_list_struct_or_map_reads_in_the_text_as_duckdb_writes_it(
    surface: Surface,
) -> None:
    """The text block shortened a long nested value from its JSON form (``{"a": "x…``,
    a MAP as ``[["k", …``, times as ``2024-01-01T10:11:12``), where every other value
    reads as DuckDB writes it, and its ``…(+N chars)`` did not count what the SQL the
    answer gives (``substr(CAST(col AS VARCHAR), 301, 300)``) reads past the cut."""
    sql = (
        "SELECT {'a': repeat('x', 400)} AS s, MAP {'k': repeat('y', 400)} AS m, "
        "list_transform(range(40), lambda i: TIMESTAMP '2024-01-01 10:11:12') AS t"
    )
    structured, text = await ok(surface, "query", sql=sql)
    assert structured["truncation"]["reason"] == "values"
    line = text.splitlines()[2].split("\t")
    assert line[0].startswith("{'a': xxx") and line[1].startswith("{k=yyy")
    assert line[2].startswith("['2024-01-01 10:11:12', '2024-01-01 10:11:12'")
    handle = structured["result_handle"]
    for shown, column in zip(line, ("s", "m", "t"), strict=True):
        rest, _ = await ok(
            surface,
            "query",
            sql=f'SELECT length(substr(CAST("{column}" AS VARCHAR), 301)) AS n FROM {handle}',
        )
        view, more = shown.split("…(+")
        assert len(view) == 300 and more == f"{rest['rows'][0][0]} chars)", column


@pytest.mark.parametrize("name", ["duckdb_tables", "pragma_notes", "sqlite_master"])
async def test_a_snapshot_cannot_take_a_name_queries_are_refused(
    surface: Surface, name: str
) -> None:
    """A snapshot under a name the rails keep for DuckDB's own objects was taken (and its
    scan charged), then every query of it was refused internal_object_not_allowed."""
    spec = {
        "table": "web_sessions",
        "select": ["device"],
        "where": "event_date > DATE '2026-10-30'",
    }
    taken = await refused(surface, "snapshot_create", name=name, **spec)
    assert taken["code"] == "snapshot_invalid" and name in taken["message"]
    assert "duckdb_" in taken["hint"]
    listed, _ = await ok(surface, "snapshot_list")
    assert name not in [s["name"] for s in listed["snapshots"]]


async def test_snapshot_lifecycle(surface: Surface) -> None:
    name = f"recent_{surface.kind}"
    spec = {
        "table": "web_sessions",
        "select": ["session_id", "device"],
        "where": "event_date >= DATE '2026-10-01'",
    }
    estimate, _ = await ok(surface, "snapshot_estimate", **spec)
    assert estimate["estimated_scan_bytes"] > 0 and estimate["fits_cap"] is True
    info, text = await ok(surface, "snapshot_create", name=name, ttl_hours=2, **spec)
    assert f"query it as {name}" in text
    assert info["rows"] > 0 and info["location"] == surface.kind and info["expires_at"]
    assert (info["download_url"] is not None) == (surface.kind == "server")
    again = await refused(surface, "snapshot_create", name=name, **spec)
    assert again["code"] == "snapshot_exists" and "exists" in again["message"]
    assert "another name" in again["hint"] and "snapshot_drop" in again["hint"]
    clash = await refused(surface, "snapshot_create", name="orders", **spec)
    assert clash["code"] == "snapshot_invalid"
    # its hint was the spec's ("a column list and a predicate"), not about the name
    assert "share one set of names" in clash["hint"] and "column list" not in clash["hint"]
    local = {"table": "orders", "select": ["channel"], "name": f"local_{surface.kind}"}
    server_table = await refused(surface, "snapshot_create", **local)
    assert server_table["code"] == "snapshot_invalid" and "remote tables" in server_table["hint"]
    listed, _ = await ok(surface, "snapshot_list")
    assert name in [s["name"] for s in listed["snapshots"]]
    counted, _ = await ok(surface, "query", sql=f"SELECT count(*) FROM {name}")
    assert counted["rows"] == [[info["rows"]]]
    assert counted["provenance"]["tables"][0]["query_mode"] == "snapshot"
    dropped, _ = await ok(surface, "snapshot_drop", name=name)
    assert dropped["dropped"]["name"] == name
    gone = await refused(surface, "query", sql=f"SELECT count(*) FROM {name}")
    assert gone["code"] == "table_not_found"
    assert (await refused(surface, "snapshot_drop", name=name))["code"] == "snapshot_not_found"


async def test_a_snapshot_cut_by_its_own_limit_says_so(surface: Surface) -> None:
    """limit 10 on a filter matching thousands of rows said truncated: false (and 'cut: no'
    in the CLI's list): the limit is now probed one row past, and a cut is said."""
    spec = {
        "table": "web_sessions",
        "select": ["session_id"],
        "where": "event_date >= DATE '2026-10-01'",
        "order_by": ["session_id"],
    }
    cut, text = await ok(surface, "snapshot_create", name=f"first_{surface.kind}", limit=10, **spec)
    assert cut["rows"] == 10 and cut["truncated"] is True
    assert "Cut by its own limit" in text and "in the order session_id" in text
    assert "LIMIT 10" in cut["sql"] and "LIMIT 11" not in cut["sql"]
    listed, _ = await ok(surface, "snapshot_list")
    mine = next(s for s in listed["snapshots"] if s["name"] == f"first_{surface.kind}")
    assert mine["truncated"] is True and any("own limit" in n for n in mine["notes"])
    rows, _ = await ok(surface, "query", sql=f"SELECT count(*) FROM first_{surface.kind}")
    assert rows["rows"] == [[10]]
    whole, _ = await ok(
        surface,
        "query_remote",
        sql="SELECT count(*) FROM web_sessions WHERE event_date >= DATE '2026-10-01'",
    )
    matching = whole["rows"][0][0]
    assert matching > 10
    roomy, text = await ok(
        surface, "snapshot_create", name=f"all_{surface.kind}", limit=matching + 5, **spec
    )
    assert roomy["truncated"] is False and "own limit" not in text
    for name in (f"first_{surface.kind}", f"all_{surface.kind}"):
        await ok(surface, "snapshot_drop", name=name)


@contextmanager
def caps(services: Any, **values: int) -> Iterator[None]:
    """Scan caps changed for one test, as an admin would at run time."""
    for key, value in values.items():
        services.server_config.set(f"scan_caps.{key}", value, updated_by="test")
    try:
        yield
    finally:
        for key in values:
            services.server_config.delete(f"scan_caps.{key}")


async def test_a_snapshot_holds_every_matching_row_or_none(
    surface: Surface, demo_server: DemoServer
) -> None:
    where = "event_date >= DATE '2026-10-01'"
    spec = {"table": "web_sessions", "select": ["session_id", "device"], "where": where}
    counted, _ = await ok(
        surface, "query_remote", sql=f"SELECT count(*) AS n FROM web_sessions WHERE {where}"
    )
    matching = counted["rows"][0][0]
    assert matching > 50
    services = demo_server.live.services
    name = f"whole_{surface.kind}"
    with caps(services, max_result_rows=50):  # a query's row cap does not cut a snapshot
        info, text = await ok(surface, "snapshot_create", name=name, **spec)
    assert info["rows"] == matching and info["truncated"] is False
    assert f"{matching:,} rows" in text
    await ok(surface, "snapshot_drop", name=name)
    with caps(services, max_snapshot_rows=matching - 1):
        estimate, _ = await ok(surface, "snapshot_estimate", **spec)
        assert estimate["fits_cap"] is False and estimate["blocked_by"] == "max_snapshot_rows"
        assert estimate["max_snapshot_rows"] == matching - 1
        refusal = await refused(surface, "snapshot_create", name=name, **spec)
    assert refusal["code"] == "snapshot_too_large"
    assert (
        f"{matching - 1:,} rows" in refusal["message"] and "nothing was kept" in refusal["message"]
    )
    assert refusal["next_step"]["arguments"]["select"] == ["session_id", "device"]
    listed, _ = await ok(surface, "snapshot_list")
    assert name not in [s["name"] for s in listed["snapshots"]]
    with caps(services, max_snapshot_rows=matching - 1):  # the caller's own limit is fine
        limited, _ = await ok(surface, "snapshot_create", name=name, limit=10, **spec)
    assert limited["rows"] == 10
    await ok(surface, "snapshot_drop", name=name)


async def test_the_suggested_snapshot_follows_the_data_not_today(surface: Surface) -> None:
    refusal = await refused(surface, "query", sql="SELECT device FROM web_sessions")
    assert refusal["code"] == "remote_table_needs_snapshot"
    suggested = refusal["next_step"]["options"][1]
    assert suggested["tool"] == "snapshot_create"
    arguments = {**suggested["arguments"], "select": ["device"], "name": f"wk_{surface.kind}"}
    assert "DATE '" in arguments["where"]  # a window before the table's last day, not today's
    info, _ = await ok(surface, "snapshot_create", **arguments)
    assert info["rows"] > 0  # the ready next step finds data
    await ok(surface, "snapshot_drop", name=arguments["name"])


async def test_an_empty_answer_says_what_range_the_table_holds(surface: Surface) -> None:
    remote, text = await ok(
        surface,
        "query_remote",
        sql="SELECT device FROM web_sessions WHERE event_date >= DATE '2099-01-01'",
    )
    assert remote["row_count"] == 0
    assert any(n.startswith("web_sessions holds event_date from ") for n in remote["notes"])
    assert "Note: web_sessions holds event_date" in text
    if surface.kind == "server":  # local tables' profiles live on the server
        local, _ = await ok(
            surface, "query", sql="SELECT order_id FROM orders WHERE order_date > DATE '2099-01-01'"
        )
        assert any(n.startswith("orders holds order_date from ") for n in local["notes"])
    found, _ = await ok(surface, "query", sql="SELECT order_id FROM orders LIMIT 1")
    assert found["notes"] == []  # nothing to explain when rows came back


async def test_metrics(surface: Surface) -> None:
    listed, _ = await ok(surface, "metrics_list", search="mau")
    assert [m["id"] for m in listed["metrics"]] == ["product/active_users"]
    shown, _ = await ok(surface, "metric_show", id="revenue/total_revenue")
    assert shown["definition"]["expression"] == "sum(total_amount)"
    result, text = await ok(
        surface,
        "metric_query",
        id="revenue/total_revenue",
        grain="year",
        dimensions=["channel"],
        filters={"channel": ["web", "store"]},
        time_range={"start": "2025-01-01", "end": "2026-01-01"},
    )
    assert result["metric_id"] == "revenue/total_revenue" and result["variant"] == "expression"
    assert "DATE_TRUNC('YEAR', order_date)" in result["sql"] and "SQL: SELECT" in text
    assert {r[1] for r in result["rows"]} == {"web", "store"} and {
        r[0] for r in result["rows"]
    } == {"2025-01-01"}
    remote, _ = await ok(surface, "metric_query", id="product/active_users", grain="total")
    assert remote["bytes_scanned"] > 0 and remote["rows"][0][0] > 0
    bad = await refused(surface, "metric_query", id="revenue/total_revenue", dimensions=["colour"])
    assert bad["code"] == "metric_request_invalid" and bad["next_step"]["tool"] == "metric_show"
    # 'segment' is not a column of orders: only its own SQL (sql_by_segment), alone
    for asked in ({"dimensions": ["channel", "segment"]}, {"filters": {"segment": "smb"}}):
        mixed = await refused(surface, "metric_query", id="revenue/total_revenue", **asked)
        assert mixed["code"] == "metric_request_invalid", mixed
        assert "sql_by_segment" in mixed["message"] and "dimensions=['segment']" in mixed["hint"]
    alone, _ = await ok(surface, "metric_query", id="revenue/total_revenue", dimensions=["segment"])
    assert alone["variant"] == "sql_by_segment" and len(alone["rows"]) == 3


async def test_an_engine_refusing_a_compiled_metric_points_at_the_request(
    surface: Surface,
) -> None:
    """A filter value of the wrong type (a number for the text dimension channel) made the
    engine refuse SQL Agnes wrote, answered "Fix the query; the message is the engine's"
    to a caller who wrote no query. It now names what to check and carries the SQL."""
    for value in (1.5, 10**40):
        error = await refused(
            surface, "metric_query", id="revenue/total_revenue", filters={"channel": value}
        )
        assert error["code"] == "query_failed" and "Conversion Error" in error["message"]
        assert "Fix the query" not in error["hint"] and "filter value" in error["hint"]
        assert "channel" in error["details"]["sql"]
        assert error["next_step"]["tool"] == "metric_show"


async def test_ids_of_any_shape_get_the_same_refusal_on_both_backends(surface: Surface) -> None:
    """The workspace sends ids in URL paths: one without its category, an empty one, or one
    with '/' or '..' in it reaches the server's lookup (not a missing route), and is
    answered as over HTTP."""
    short = await refused(surface, "metric_show", id="total_revenue")
    assert short["code"] == "metric_not_found" and "revenue/total_revenue" in short["hint"]
    for odd in ("", "revenue/total_revenue/x", "../revenue/total_revenue"):
        assert (await refused(surface, "metric_show", id=odd))["code"] == "metric_not_found"
    assert (await refused(surface, "metric_query", id="total_revenue"))["code"] == (
        "metric_not_found"
    )
    for table in ("a/b", "web_sessions/../support_tickets", "orders/"):
        assert (await refused(surface, "describe", table=table))["code"] == "table_not_found"
        assert (await refused(surface, "schema", table=table))["code"] == "table_not_found"


async def test_a_limit_above_the_row_cap_is_capped_and_said(surface: Surface) -> None:
    """A ``limit`` over 100,000 was refused invalid_arguments by the tool's schema, while
    REST and the CLI cap it at the server's row cap (max_result_rows, which an admin may
    set higher or lower) and say so. The tools now do as they do."""
    whole, _ = await ok(surface, "query", sql="SELECT * FROM range(10)", limit=10**9)
    assert whole["row_count"] == 10 and not whole["truncated"]
    cap = whole["row_limit"]
    capped, text = await ok(surface, "query", sql=f"SELECT * FROM range({cap + 5})", limit=10**9)
    assert capped["truncated"] and capped["row_count"] == cap
    assert capped["row_limit_source"] == "cap" and "max_result_rows" in text


async def test_an_answer_near_the_budget_is_whole_exactly_when_it_fits(surface: Surface) -> None:
    """Past a chunk of rows, whether every row fits is first summed from the rows' own
    sizes (the rows are converted once, not built and measured for each guess): an
    answer that fits is never cut for the sum's error, and one that does not is cut."""

    def sql(rows: int) -> str:
        return f"SELECT repeat('x', 40) || range AS v FROM range({rows})"

    low, high = 1, 1_000  # one row fits; 1,000 rows of ~50 characters do not
    while low < high:
        middle = (low + high + 1) // 2
        answer, _ = await ok(surface, "query", sql=sql(middle))
        low, high = (middle, high) if answer["shown_rows"] == middle else (low, middle - 1)
    whole, text = await ok(surface, "query", sql=sql(low))
    cut, _ = await ok(surface, "query", sql=sql(low + 1))
    assert low > 256 and whole["shown_rows"] == low and whole["truncation"] is None
    assert cut["shown_rows"] < low + 1 and cut["result_handle"]
    size = ob.size_of(whole, text)
    one_more = len(ob.dumps(whole["rows"][-1])) + 1
    assert ob.DEFAULT_CHARS - one_more < size <= ob.DEFAULT_CHARS  # nothing cut that fitted


async def test_every_cut_of_a_wide_answer_is_said(surface: Surface) -> None:
    """Columns cut along with rows, stats covering only the first columns, not one row
    fitting, and a column name too long to show: each said, with a handle to read it."""
    many = ", ".join(f"'v{i}' || range AS c{i:03d}" for i in range(300))
    wide, _ = await ok(surface, "query", sql=f"SELECT {many} FROM range(50)")
    how = wide["truncation"]["how_to_get_more"]
    assert wide["shown_rows"] < 50 and len(wide["columns"]) < 300
    assert f"Only the first {len(wide['columns'])} of 300 columns fit here" in how
    assert any("stats cover the first 50 of 300 columns" in n for n in wide["notes"])
    fat = ", ".join(f"repeat('v', 400) AS c{i:03d}" for i in range(200))
    none, text = await ok(surface, "query", sql=f"SELECT {fat} FROM range(1)")
    assert (
        none["shown_rows"] == 0 and "Not one row fits here" in none["truncation"]["how_to_get_more"]
    )
    assert "Not one row fits here" in text
    more = ", ".join(f"range AS c{i:04d}" for i in range(1000))
    cut, _ = await ok(surface, "query", sql=f"SELECT {more} FROM range(50)", limit=1)
    assert cut["shown_rows"] == 1 and len(cut["columns"]) < 1000  # the row fits, not all columns
    assert (
        cut["truncation"]["reason"] == "rows"
        and "columns fit here" in cut["truncation"]["how_to_get_more"]
    )
    # every cut of columns keeps the answer to be read with SQL (it was kept only when no
    # column fitted), and the handle reads the columns not shown
    assert cut["result_handle"] and cut["result_handle"] in cut["truncation"]["how_to_get_more"]
    rest, _ = await ok(surface, "query", sql=f"SELECT c0999 FROM {cut['result_handle']}")
    assert rest["rows"] == [[0]]
    name = "n" * 20_000
    odd, _ = await ok(surface, "query", sql=f'SELECT 1 AS "{name}", 2 AS b')
    assert odd["columns"] == [] and odd["result_handle"] in odd["truncation"]["how_to_get_more"]


async def test_errors_do_not_echo_huge_input_whole(surface: Surface) -> None:
    named = await refused(surface, "schema", table="t" * 1_000_000)  # the schema says no
    assert named["code"] == "invalid_arguments" and len(named["message"]) < 400
    said = await refused(surface, "query", sql="SELECT * FROM " + "t" * 50_000)  # the rails
    assert said["code"] == "table_not_found"
    assert len(said["message"]) < 2_100 and "characters)" in said["message"]


async def test_a_huge_search_gets_the_same_answer_on_both_backends(surface: Surface) -> None:
    """The workspace relays a search to the REST API, which takes 200 characters: a longer
    one was refused there ("invalid_request", or past a URL's 65,536 characters "too long
    to send (12 characters in the URL)") and answered by the server's tools. The tools'
    schema now bounds it as the API does, on both."""
    for tool in ("catalog", "metrics_list"):
        for search in ("x" * 201, "x" * 70_000):
            long = await refused(surface, tool, search=search)
            assert long["code"] == "invalid_arguments" and "search" in long["message"], long
        found, _ = await ok(surface, tool, search="x" * 200)
        assert found.get("tables", []) == [] and found.get("metrics") == []


def test_an_argument_too_long_for_a_url_is_named_with_its_length(
    demo_server: DemoServer,
) -> None:
    api = ServerApi(demo_server.live.base_url, demo_server.analyst_token)
    with pytest.raises(ArgumentTooLong) as caught:
        api.get("/api/catalog", search="x" * 70_000)
    api.close()
    assert "'search', 70,000 characters" in caught.value.message
    assert "70,0" in caught.value.message.split("URL would hold ")[1]


async def test_a_snapshot_limit_past_a_bigint_is_no_limit(surface: Surface) -> None:
    """A limit past 2**63 went into the SQL as it was: the estimate showed it, and the
    snapshot failed query_failed "out of range for INT64" with the hint "Fix the query",
    in SQL the caller never wrote."""
    spec = {
        "table": "web_sessions",
        "select": ["session_id"],
        "where": "event_date >= DATE '2026-10-25'",
    }
    huge = 10**30
    estimate, _ = await ok(surface, "snapshot_estimate", **spec, limit=huge)
    assert f"LIMIT {2**63 - 2}" in estimate["sql"]
    made, _ = await ok(surface, "snapshot_create", **spec, limit=huge, name="huge_limit")
    try:
        whole, _ = await ok(surface, "snapshot_create", **spec, name="no_limit")
        await ok(surface, "snapshot_drop", name="no_limit")
        assert made["rows"] == whole["rows"] > 0
    finally:
        await ok(surface, "snapshot_drop", name="huge_limit")


async def test_snapshot_spec_bounds_are_invalid_arguments(surface: Surface) -> None:
    long_where = await refused(
        surface, "snapshot_estimate", table="web_sessions", select=["device"], where="x" * 10_001
    )
    assert long_where["code"] == "invalid_arguments" and "where" in long_where["message"]


async def test_refusals_name_no_internals(surface: Surface) -> None:
    """A bad cursor or a where clause with two statements is explained in the caller's
    terms, not with Python's exception or sqlglot's class names."""
    bad = await refused(surface, "catalog", cursor="\u00ff\u00fe not a cursor")
    assert bad["code"] == "cursor_invalid" and "next_cursor" in bad["message"]
    where = await refused(
        surface,
        "snapshot_estimate",
        table="web_sessions",
        select=["device"],
        where="1=1; DROP TABLE x",
    )
    assert "not one predicate" in where["message"]
    for said in (bad, where):
        assert "Error" not in said["message"] and "<class" not in said["message"]


async def test_prompts_and_resources(surface: Surface) -> None:
    async with surface.client() as client:
        prompts = {p.name for p in await client.list_prompts()}
        assert {"explore_table", "answer_with_metric"} <= prompts
        explore = await client.get_prompt("explore_table", {"table": "orders"})
        assert "schema" in explore.messages[0].content.text
        catalog = json.loads((await client.read_resource("agnes://catalog"))[0].text)
        assert "orders" in [t["id"] for t in catalog["tables"]]
        schema = json.loads((await client.read_resource("agnes://tables/orders/schema"))[0].text)
        assert schema["table"] == "orders"
        metric = json.loads((await client.read_resource("agnes://metrics/revenue/mrr"))[0].text)
        assert metric["id"] == "revenue/mrr"
        instructions = client.instructions or ""
        assert "snapshot_estimate" in instructions and "DATE_SUB" in instructions


async def test_a_resource_too_large_is_valid_json_that_says_it_was_cut(surface: Surface) -> None:
    """The schema and catalog resources were cut at the response ceiling as text: a wide
    table's schema came back as JSON broken off mid-string, its last columns dropped in
    silence. They now hold the entries that fit and say what was left out."""
    columns = ", ".join(f"range AS c{i:04d}" for i in range(2_500))
    wide, _ = await ok(surface, "query", sql=f"SELECT {columns} FROM range(3)")
    handle = wide["result_handle"]
    async with surface.client() as client:
        text = (await client.read_resource(f"agnes://tables/{handle}/schema"))[0].text
        small = (await client.read_resource("agnes://tables/orders/schema"))[0].text
    schema = json.loads(text)
    assert len(text) <= ob.CEILING_CHARS and schema["truncated"] is True
    assert 0 < schema["shown"] == len(schema["columns"]) < 2_500
    assert schema["columns"][-1]["name"] == f"c{schema['shown'] - 1:04d}"
    how = schema["truncation"]["how_to_get_more"]
    assert f"Only the first {schema['shown']:,} of 2,500 columns" in how and "schema tool" in how
    whole = json.loads(small)
    assert whole["truncated"] is False and len(whole["columns"]) == 7


def test_the_catalog_resource_says_when_its_table_bound_cut_it() -> None:
    tables = [{"id": f"t{i:03d}"} for i in range(250)]
    payload = {"tables": tables, "total_tables": 250, "metrics": [], "notes": []}
    cut = json.loads(whole_json(payload, "tables", CATALOG_RESOURCE_TABLES, "Use catalog."))
    assert cut["shown"] == len(cut["tables"]) == 200 and cut["total_tables"] == 250
    assert cut["truncation"]["reason"] == "page"
    assert (
        cut["truncation"]["how_to_get_more"]
        == "Only the first 200 of 250 tables are here. Use catalog."
    )


async def test_disk_info_in_the_workspace(surfaces: dict[str, Surface]) -> None:
    info, text = await ok(surfaces["workspace"], "disk_info")
    assert "free" in text
    assert info["tables"] == 6 and info["data_bytes"] > 0 and info["free_bytes"] > 0
    assert info["workspace"] == str(surfaces["workspace"].workspace)


async def test_server_snapshots_download_and_follow_the_grant(demo_server: DemoServer) -> None:
    """A server snapshot downloads as parquet with the owner's token, and disappears
    (list, query, download) once the source table is no longer granted."""
    import io

    import pyarrow.parquet as pq

    from agnes_mcp.resource_types import ResourceType
    from tests.conftest import add_user, token_for

    services = demo_server.live.services
    group = services.groups.add("snapshot-takers", "")
    grant = services.grants.add(group.id, ResourceType.TABLE, "web_sessions", granted_by="test")
    user = add_user(services, groups=(group.id,))
    token = token_for(services, user)
    principal = services.tokens.authenticate(token)
    surface = Surface(
        "server", build_single_user_mcp(ServerBackend(services, principal, ResultStore()))
    )
    info, _ = await ok(
        surface,
        "snapshot_create",
        table="web_sessions",
        select=["session_id", "device"],
        where="event_date >= DATE '2026-10-01'",
        name="mine",
    )
    described, _ = await ok(surface, "schema", table="mine")
    assert described["query_mode"] == "snapshot" and described["rows"] == info["rows"]
    assert [c["name"] for c in described["columns"]] == ["session_id", "device"]
    assert described["description"] == "A snapshot of web_sessions."
    with demo_server.live.client(token) as client:
        download = client.get(info["download_url"].removeprefix(demo_server.live.base_url))
        assert download.status_code == 200
        assert pq.read_table(io.BytesIO(download.content)).num_rows == info["rows"]
    with demo_server.client("analyst") as other:  # another user's token cannot fetch it
        assert other.get("/api/snapshots/stored/mine").status_code == 404
    services.grants.delete(grant.id)
    listed, _ = await ok(surface, "snapshot_list")
    assert listed["snapshots"] == []
    assert (await refused(surface, "schema", table="mine"))["code"] == "table_not_found"
    assert (await refused(surface, "query", sql="SELECT count(*) FROM mine"))[
        "code"
    ] == "table_not_found"
    with demo_server.live.client(token) as client:
        assert client.get("/api/snapshots/stored/mine").status_code == 404


async def test_kept_results_follow_the_grants_of_the_tables_they_came_from(
    demo_server: DemoServer,
) -> None:
    """A result handle stayed readable after its table's grant was revoked (the snapshot
    of the same table was hidden at once): a kept result now resolves only while its
    owner may read every table its rows came from, through results and snapshots too."""
    from agnes_mcp.resource_types import ResourceType
    from tests.conftest import add_user, token_for

    services = demo_server.live.services
    group = services.groups.add("result-keepers", "")
    orders = services.grants.add(group.id, ResourceType.TABLE, "orders", granted_by="test")
    sessions = services.grants.add(group.id, ResourceType.TABLE, "web_sessions", granted_by="test")
    principal = services.tokens.authenticate(
        token_for(services, add_user(services, groups=(group.id,)))
    )
    surface = Surface(
        "server", build_single_user_mcp(ServerBackend(services, principal, ResultStore()))
    )
    pad = "repeat('x', 300) AS pad"

    async def kept(sql: str) -> str:
        answer, _ = await ok(surface, "query", sql=sql, limit=500)
        assert answer["result_handle"], answer["truncation"]
        return str(answer["result_handle"])

    from_orders = await kept(f"SELECT order_id, {pad} FROM orders")
    from_that = await kept(f"SELECT order_id, pad || 'y' AS pad FROM {from_orders}")
    await ok(
        surface,
        "snapshot_create",
        table="web_sessions",
        select=["session_id"],
        where="event_date >= DATE '2026-10-01'",
        name="october",
    )
    from_snapshot = await kept(f"SELECT session_id, {pad} FROM october")
    services.grants.delete(orders.id)
    for handle in (from_orders, from_that):
        gone = await refused(surface, "query", sql=f"SELECT count(*) FROM {handle}")
        assert gone["code"] == "table_not_found"
    counted, _ = await ok(surface, "query", sql=f"SELECT count(*) AS n FROM {from_snapshot}")
    assert counted["rows"] == [[500]]
    services.grants.delete(sessions.id)
    gone = await refused(surface, "query", sql=f"SELECT count(*) FROM {from_snapshot}")
    assert gone["code"] == "table_not_found"
    services.grants.add(group.id, ResourceType.TABLE, "orders", granted_by="test")
    back, _ = await ok(surface, "query", sql=f"SELECT count(*) AS n FROM {from_that}")
    assert back["rows"] == [[500]]  # granted again: readable again (nothing was deleted)


async def test_server_snapshots_stop_at_the_users_quota(
    demo_server: DemoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a user's kept snapshots hold max_snapshot_bytes_per_user, a new one is refused
    before any warehouse work; dropping one makes room; others are not held up."""
    from tests.conftest import add_user, token_for

    services = demo_server.live.services
    analysts = next(g for g in services.groups.all() if g.name == "Analysts")
    surfaces = []
    for _ in range(2):
        user = add_user(services, groups=(analysts.id,))
        principal = services.tokens.authenticate(token_for(services, user))
        backend = ServerBackend(services, principal, ResultStore())
        surfaces.append(Surface("server", build_single_user_mcp(backend)))
    mine, other = surfaces
    spec = {
        "table": "web_sessions",
        "select": ["device"],
        "where": "event_date >= DATE '2026-10-01'",
    }
    first, _ = await ok(mine, "snapshot_create", name="one", **spec)
    assert first["bytes"] > 0
    stored = services.stored_snapshots
    monkeypatch.setattr(stored, "max_bytes_per_user", lambda: first["bytes"])
    full = await refused(mine, "snapshot_create", name="two", **spec)
    assert full["code"] == "snapshot_quota_exceeded"
    assert "max_snapshot_bytes_per_user" in full["message"] and full["next_step"]["tool"] == (
        "snapshot_list"
    )
    await ok(other, "snapshot_create", name="theirs", **spec)  # another user has room
    await ok(mine, "snapshot_drop", name="one")
    await ok(mine, "snapshot_create", name="two", **spec)


def test_creates_at_once_cannot_pass_the_snapshot_bound_together(
    demo_server: DemoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five creates at once all passed the check before any stored (the red team's 230 MB
    held + 5 → 460 MB of a 300 MB bound): a user's creates run one at a time."""
    import threading

    from agnes_mcp.rails.refusals import SnapshotQuotaExceeded
    from agnes_mcp.rails.snapshot_spec import SnapshotSpec
    from tests.conftest import add_user, token_for

    services = demo_server.live.services
    analysts = next(g for g in services.groups.all() if g.name == "Analysts")
    user = add_user(services, groups=(analysts.id,))
    principal = services.tokens.authenticate(token_for(services, user))
    stored = services.stored_snapshots
    monkeypatch.setattr(stored, "max_bytes_per_user", lambda: 1)  # the first fills it
    spec = SnapshotSpec(
        table_id="web_sessions", select=["device"], where="event_date >= DATE '2026-10-01'"
    )
    start = threading.Barrier(5)
    outcomes: list[str] = []

    def create(i: int) -> None:
        start.wait()
        try:
            stored.create(principal, spec, f"at_once_{i}", None)
            outcomes.append("stored")
        except SnapshotQuotaExceeded:
            outcomes.append("refused")

    threads = [threading.Thread(target=create, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 4 + ["stored"]


def test_queries_name_snapshots_without_reading_them_from_disk_each_time(
    demo_server: DemoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A query names its user's snapshots on every call: they are read from disk again
    only after a change (made here, or found on disk), an expired one is not offered,
    and the query path deletes nothing (a listing prunes)."""
    import datetime as dt

    import pyarrow as pa

    from agnes_mcp.rails.snapshot_spec import SnapshotSpec
    from agnes_sync.snapshot_files import SnapshotFiles
    from agnes_sync.snapshot_meta import SnapshotMeta
    from tests.conftest import add_user, token_for

    services = demo_server.live.services
    analysts = next(g for g in services.groups.all() if g.name == "Analysts")
    principal = services.tokens.authenticate(
        token_for(services, add_user(services, groups=(analysts.id,)))
    )
    stored = services.stored_snapshots
    assert stored.extras(principal) == {}
    spec = SnapshotSpec(
        table_id="web_sessions", select=["device"], where="event_date >= DATE '2026-10-01'"
    )
    stored.create(principal, spec, "mine", None)
    assert set(stored.extras(principal)) == {"mine"}

    reads: list[str] = []
    original = SnapshotFiles.get

    def counted(files: SnapshotFiles, name: str) -> SnapshotMeta | None:
        reads.append(name)
        return original(files, name)

    monkeypatch.setattr(SnapshotFiles, "get", counted)
    for _ in range(5):
        assert set(stored.extras(principal)) == {"mine"}
    assert reads == []  # nothing changed: nothing read again

    def meta(name: str, created: dt.datetime, ttl: int | None) -> SnapshotMeta:
        return SnapshotMeta(
            name=name,
            table_id="web_sessions",
            select=["device"],
            sql="SELECT 1",
            created_at=created,
            rows=1,
            bytes=1,
            ttl_seconds=ttl,
        )

    folder = stored.files(principal)
    outside = SnapshotFiles(folder.root)  # written past this object: found by the folder
    now = dt.datetime.now(dt.UTC)
    outside.save(pa.table({"device": ["web"]}), meta("copied_in", now, None))
    outside.save(pa.table({"device": ["web"]}), meta("expired", now - dt.timedelta(hours=2), 60))
    assert set(stored.extras(principal)) == {"mine", "copied_in"}
    assert folder.data_path("expired").is_file()  # a query deletes nothing
    stored.drop(principal, "copied_in")
    assert set(stored.extras(principal)) == {"mine"}
    assert [m.name for m in stored.all(principal)] == ["mine"]  # the listing prunes
    assert not folder.data_path("expired").exists()


# --- the refusal mapping ----------------------------------------------------------------------


async def test_refusals_are_typed_results_and_crashes_stay_masked(tmp_path: Path) -> None:
    """The middleware every server installs with the tools: an AgnesError raised anywhere in
    a tool becomes its typed error result (and is not logged as a fault); any other
    exception reaches the client as FastMCP's masked error, without its text."""
    import logging

    from mcp import MCPError

    from agnes_mcp.mcp_server.errors import RefusalsAsResults
    from agnes_mcp.rails.refusals import QueryRefused, next_step

    backend = WorkspaceBackend(WorkspacePaths(tmp_path), ServerApi("http://127.0.0.1:9", None))
    mcp = build_single_user_mcp(backend)
    assert [type(m) for m in mcp.middleware].count(RefusalsAsResults) == 1

    @mcp.tool
    def refuse() -> str:
        raise QueryRefused("Not like that.", hint="Try again.", next=next_step("query", sql="x"))

    @mcp.tool
    def crash() -> str:
        raise RuntimeError("secret path /etc/agnes")

    @mcp.resource("agnes://refused")
    def refused_resource() -> str:
        raise QueryRefused("Not that one.")

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    fastmcp_log = logging.getLogger("fastmcp.server.server")
    fastmcp_log.addHandler(handler)
    try:
        async with Client(mcp) as client:
            refused = await client.call_tool("refuse", {}, raise_on_error=False)
            crashed = await client.call_tool("crash", {}, raise_on_error=False)
            with pytest.raises(MCPError) as unreadable:
                await client.read_resource("agnes://refused")
    finally:
        fastmcp_log.removeHandler(handler)
        backend.close()

    assert refused.is_error
    assert refused.content[0].text == (
        'error query_refused: Not like that.\nhint: Try again.\nnext step: {"tool":"query",'
        '"arguments":{"sql":"x"}}'
    )
    assert refused.structured_content == {
        "error": {
            "code": "query_refused",
            "message": "Not like that.",
            "hint": "Try again.",
            "next_step": {"tool": "query", "arguments": {"sql": "x"}},
        }
    }
    assert crashed.is_error and crashed.content[0].text == "Error calling tool 'crash'"
    assert "secret" not in str(crashed)
    assert unreadable.value.message == "query_refused: Not that one."
    assert unreadable.value.code == -32602  # not an internal error (-32603)
    said = unreadable.value.data["error"]  # the refusal itself, as a tool's is structured
    assert (said["code"], said["message"]) == ("query_refused", "Not that one.")
    logged = [r for r in records if r.exc_info]
    assert [type(r.exc_info[1]) for r in logged if r.exc_info] == [RuntimeError]


async def test_refusals_keep_what_the_engine_knew(surface: Surface) -> None:
    binder = await refused(surface, "query", sql="SELECT totl_amount FROM orders")
    assert binder["code"] == "query_failed"
    assert "total_amount" in binder["hint"] and "total_amount" in binder["details"]["suggestions"]
    assert (binder["details"]["line"], binder["details"]["column"]) == (1, 8)
    keyword = await refused(surface, "query", sql="SELEC channel FROM orders")
    assert keyword["code"] == "sql_parse_error"
    assert (keyword["details"]["line"], keyword["details"]["column"]) == (1, 1)
    assert "'SELECT'" in keyword["hint"] and '"SELEC"' in keyword["message"]
    alias = await refused(surface, "query", sql="SELECT channel FRM orders")
    assert "'FROM'" in alias["hint"]
    typo = await refused(surface, "query", sql="SELECT * FROM ordrs")
    assert typo["code"] == "table_not_found" and "'orders'" in typo["hint"]


async def test_a_snapshots_lifetime_is_bounded_and_an_old_unbounded_one_breaks_nothing(
    surface: Surface,
) -> None:
    """ttl_hours=1e8 was saved and then broke every tool of its user (a date overflow);
    1e-7 made a snapshot that was gone before it was listed."""
    spec = {
        "table": "web_sessions",
        "select": ["device"],
        "where": "event_date >= DATE '2026-10-01'",
    }
    huge = await refused(surface, "snapshot_create", name="forever", ttl_hours=1e8, **spec)
    assert huge["code"] == "invalid_arguments" and "ttl_hours" in huge["message"]
    tiny, _ = await ok(
        surface, "snapshot_create", name=f"brief_{surface.kind}", ttl_hours=1e-7, **spec
    )
    assert tiny["expires_at"] > tiny["created_at"]  # one second, not none at all
    await ok(surface, "snapshot_list")
    _, text = await ok(surface, "query", sql="SELECT 1 AS one")
    assert text.startswith("1 row x 1 column ·")  # not "1 columns"


def test_a_lifetime_stored_before_the_bound_never_breaks_reading() -> None:
    import datetime as dt

    from agnes_sync.snapshot_meta import SnapshotMeta

    meta = SnapshotMeta(
        name="old",
        table_id="web_sessions",
        select=["device"],
        sql="SELECT 1",
        created_at=dt.datetime.now(dt.UTC),
        rows=1,
        bytes=1,
        ttl_seconds=360_000_000_000,  # ttl_hours=1e8, as one was saved
    )
    assert meta.expires_at is None and not meta.expired(dt.datetime.now(dt.UTC))


def test_snapshot_texts_give_sizes_as_the_query_texts_do() -> None:
    """A query's text read "768.1 KiB scanned · 50.0 GiB of daily budget left", a
    snapshot's "262,242 bytes scanned" and its estimate "cap 5,368,709,120"."""
    from agnes_mcp.mcp_server.renderers import estimate_text, snapshot_text
    from agnes_mcp.mcp_server.tool_models import SnapshotInfo
    from agnes_mcp.rails.snapshot_spec import SnapshotEstimate

    estimate = SnapshotEstimate(
        table_id="web_sessions",
        estimated_scan_bytes=262_144,
        estimated_result_rows=10,
        estimated_result_bytes=None,
        limit_bytes=5 << 30,
        remaining_budget_bytes=50 << 30,
        sql="SELECT 1",
        max_snapshot_rows=10,
        max_snapshot_bytes=1 << 30,
        fits_cap=True,
        blocked_by=None,
    )
    assert estimate_text(estimate).startswith(
        "web_sessions: would scan 256.0 KiB (cap 5.0 GiB, budget left 50.0 GiB); "
    )
    info = SnapshotInfo.model_validate(
        {
            "name": "october",
            "table_id": "web_sessions",
            "select": ["device"],
            "where": None,
            "rows": 3,
            "bytes": 2048,
            "bytes_scanned": 262_242,
            "truncated": False,
            "created_at": "2026-11-30T15:00:00Z",
            "expires_at": None,
            "sql": "SELECT 1",
            "location": "workspace",
        }
    )
    assert ", 256.1 KiB scanned; query it as october" in snapshot_text(info)
