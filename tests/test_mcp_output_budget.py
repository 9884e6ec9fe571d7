"""Tool output stays within an agent's budget: a 1,000-column table and a 10M-row table
through every tool that returns data, on both backends; paging with cursors."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from agnes_mcp.mcp_server import output_budget as ob
from agnes_mcp.mcp_server import paging
from agnes_mcp.mcp_server.result_store import ResultStore
from agnes_mcp.mcp_server.server import build_single_user_mcp
from agnes_mcp.mcp_server.server_backend import ServerBackend
from agnes_mcp.mcp_server.workspace_backend import WorkspaceBackend
from agnes_mcp.resource_types import ResourceType
from agnes_sync.server_api import ServerApi
from agnes_sync.workspace.layout import WorkspacePaths
from tests.conftest import add_user, pull_into_workspace, register, running_server, token_for
from tests.test_mcp_tools import KINDS, Surface, ok, refused, within_ceiling

pytestmark = pytest.mark.anyio
WIDE_COLUMNS = 1000
TALL_ROWS = 10_000_000


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Surface]]:
    root = tmp_path_factory.mktemp("big")
    files = root / "files"
    files.mkdir()
    con = duckdb.connect()
    wide = ", ".join(
        f"'value {i} ' || repeat('x', 40) || range AS c{i:04d}" for i in range(WIDE_COLUMNS)
    )
    con.execute(f"COPY (SELECT {wide} FROM range(30)) TO '{files}/wide.parquet'")
    con.execute(
        f"COPY (SELECT range AS id, range % 7 AS bucket, 'row ' || range AS label FROM range({TALL_ROWS})) "
        f"TO '{files}/tall.parquet'"
    )
    con.close()
    sources = {"files": {"connector": "files", "options": {"path": str(files)}}}
    with running_server(root / "data", sources=sources, scheduler_enabled=False) as live:
        services = live.services
        for table in ("wide", "tall"):
            register(services, id=table, source_type="files", source_table=f"{table}.parquet")
        assert all(r.status == "ok" for r in services.sync.sync_many(["wide", "tall"], "test"))
        group = services.groups.add("big", "")
        for table in ("wide", "tall"):
            services.grants.add(group.id, ResourceType.TABLE, table, granted_by="test")
        user = add_user(services, groups=(group.id,))
        token = token_for(services, user)
        principal = services.tokens.authenticate(token)
        folder = pull_into_workspace(live.base_url, token, root / "workspace")
        backend = WorkspaceBackend(WorkspacePaths(folder), ServerApi(live.base_url, token))
        yield {
            "server": Surface(
                "server", build_single_user_mcp(ServerBackend(services, principal, ResultStore()))
            ),
            "workspace": Surface("workspace", build_single_user_mcp(backend), folder),
        }
        backend.close()


@pytest.fixture(params=KINDS)
def surface(request: pytest.FixtureRequest, big: dict[str, Surface]) -> Surface:
    return big[request.param]


async def test_a_thousand_columns(surface: Surface) -> None:
    schema, text = await ok(surface, "schema", table="wide")
    within_ceiling(schema, text)
    assert schema["total_columns"] == WIDE_COLUMNS and schema["truncated"] is True
    seen = [c["name"] for c in schema["columns"]]
    while schema["next_cursor"]:
        schema, text = await ok(surface, "schema", table="wide", cursor=schema["next_cursor"])
        within_ceiling(schema, text)
        seen.extend(c["name"] for c in schema["columns"])
    assert seen == [f"c{i:04d}" for i in range(WIDE_COLUMNS)]
    for tool, arguments in (
        ("describe", {"table": "wide", "n": 100}),
        ("query", {"sql": "SELECT * FROM wide"}),
        ("query", {"sql": "SELECT * FROM wide", "limit": 100_000}),
    ):
        result, text = await ok(surface, tool, **arguments)
        within_ceiling(result, text)
        assert result["truncated"] is True, tool
        assert result["truncation"]["reason"] in ("columns", "characters")
        assert len(result["columns"]) < WIDE_COLUMNS


async def test_ten_million_rows(surface: Surface) -> None:
    for arguments in (
        {"sql": "SELECT * FROM tall"},
        {"sql": "SELECT * FROM tall", "limit": 100_000},
    ):
        result, text = await ok(surface, "query", **arguments)
        within_ceiling(result, text)
        assert result["truncated"] is True and result["result_handle"]
        assert result["row_count"] == arguments.get("limit", 1000)
        assert len(result["rows"]) == result["shown_rows"] <= ob.FIRST_ROWS
    aggregate, text = await ok(
        surface, "query", sql="SELECT bucket, count(*) AS n FROM tall GROUP BY 1 ORDER BY 1"
    )
    assert sum(r[1] for r in aggregate["rows"]) == TALL_ROWS and not aggregate["truncated"]
    described, text = await ok(surface, "describe", table="tall", n=100)
    within_ceiling(described, text)
    catalog, text = await ok(surface, "catalog")
    assert {t["id"]: t["rows"] for t in catalog["tables"]}["tall"] == TALL_ROWS


async def test_catalog_pages_with_an_opaque_cursor(
    surface: Surface, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paging, "PAGE", 1)
    first, text = await ok(surface, "catalog")
    assert [t["id"] for t in first["tables"]] == ["tall"] and first["truncated"] is True
    assert first["truncation"]["reason"] == "page" and "cursor=" in text
    second, _ = await ok(surface, "catalog", cursor=first["next_cursor"])
    assert [t["id"] for t in second["tables"]] == ["wide"] and second["next_cursor"] is None
    assert second["metrics"] == []
    for cursor in ("garbage!", first["next_cursor"][:-2]):
        assert (await refused(surface, "catalog", cursor=cursor))["code"] == "cursor_invalid"
    other = await refused(surface, "catalog", cursor=first["next_cursor"], search="wide")
    assert other["code"] == "cursor_invalid" and "another listing" in other["message"]
