"""A workspace whose server cannot be reached: what was pulled still answers, the last
catalog and metric definitions say the workspace is offline and since when, and metrics
on local tables are computed here."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from agnes_mcp.mcp_server.workspace_backend import WorkspaceBackend
from agnes_mcp.metrics.compiler import MetricRequest
from agnes_mcp.rails.refusals import QueryRefused, TableNotFound
from agnes_sync import atomic
from agnes_sync.server_api import ServerApi, ServerUnreachable
from agnes_sync.workspace import catalog_cache
from agnes_sync.workspace.layout import WorkspacePaths
from tests.conftest import DemoServer, pull_into_workspace

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens


@pytest.fixture(scope="module")
def folder(demo_server: DemoServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pull_into_workspace(
        demo_server.live.base_url, demo_server.analyst_token, tmp_path_factory.mktemp("offline")
    )


@pytest.fixture(scope="module")
def online(demo_server: DemoServer, folder: Path) -> Iterator[WorkspaceBackend]:
    backend = WorkspaceBackend(
        WorkspacePaths(folder), ServerApi(demo_server.live.base_url, demo_server.analyst_token)
    )
    yield backend  # agnes pull (in the folder fixture) kept the catalog and definitions
    backend.close()


@pytest.fixture(scope="module")
def offline(online: WorkspaceBackend, folder: Path) -> Iterator[WorkspaceBackend]:
    backend = WorkspaceBackend(WorkspacePaths(folder), ServerApi(UNREACHABLE, "agnes_x_y"))
    yield backend
    backend.close()


def test_a_pull_keeps_the_catalog_and_every_metric_definition(
    online: WorkspaceBackend,
) -> None:
    kept = catalog_cache.load(online.paths)
    assert kept.fetched_at is not None
    assert {t["id"] for t in kept.tables} >= {"orders", "web_sessions"}
    metrics = online.metrics_list(None).metrics
    assert metrics and set(kept.definitions) == {m.id for m in metrics}


def test_schema_offline_comes_from_the_local_parquet(
    online: WorkspaceBackend, offline: WorkspaceBackend
) -> None:
    online_schema, offline_schema = online.schema("orders"), offline.schema("orders")
    served = {c.name: c.type for c in online_schema.columns}
    local = {c.name: c.type for c in offline_schema.columns}
    assert local.keys() == served.keys() and len(local) > 3
    # what the local copy cannot say is said, not left as if unknown to everyone
    assert offline_schema.partition_by == online_schema.partition_by == "order_date"
    assert online_schema.notes == []
    assert offline_schema.notes and "server cannot be reached" in offline_schema.notes[0]


def test_catalog_offline_is_the_last_one_marked_stale(
    online: WorkspaceBackend, offline: WorkspaceBackend
) -> None:
    listing, stale = online.catalog(None, None), offline.catalog(None, None)
    tables, metrics = listing.tables, listing.metrics
    stale_tables, stale_metrics = stale.tables, stale.metrics
    assert listing.notes == []
    (said,) = stale.notes
    assert said.startswith("The server cannot be reached: this is the catalog as of the last")
    assert {t.id for t in stale_tables} == {t.id for t in tables}
    assert [m.id for m in stale_metrics] == [m.id for m in metrics] and metrics
    remote = next(t for t in stale_tables if t.id == "web_sessions")
    assert remote.location == "remote" and "server unreachable" in remote.how_to_fetch
    assert all("server unreachable; catalog as of " in t.source for t in stale_tables)
    assert offline.metrics_list("revenue").metrics  # metric definitions too
    kept_metrics = offline.metrics_list(None)
    assert [m.id for m in kept_metrics.metrics] == [m.id for m in metrics]
    assert kept_metrics.notes == [said]


def test_metrics_on_local_tables_are_computed_offline(
    online: WorkspaceBackend, offline: WorkspaceBackend
) -> None:
    request = MetricRequest(dimensions=["channel"], grain="year")
    here = online.metric_query("revenue/total_revenue", request, None)
    there = offline.metric_query("revenue/total_revenue", request, None)
    assert there.provenance.engine == "duckdb (workspace)" and there.table.num_rows > 0

    def rows(answer: object) -> list[tuple[object, ...]]:
        return sorted(tuple(r.values()) for r in answer.table.to_pylist())  # type: ignore[attr-defined]

    assert rows(there) == rows(here)


def test_what_needs_the_server_says_so_offline(offline: WorkspaceBackend) -> None:
    with pytest.raises(ServerUnreachable):
        offline.query_remote("SELECT count(*) FROM web_sessions", None)


def test_a_table_not_here_offline_is_not_said_to_be_ungranted(
    online: WorkspaceBackend, offline: WorkspaceBackend
) -> None:
    """Offline, a name neither pulled nor in the kept catalog was refused as "neither in
    this workspace nor among the server's tables for you (... you are not granted it)":
    the server was never asked, and the kept catalog may predate a grant."""
    with pytest.raises(QueryRefused) as there:
        online.query("SELECT * FROM no_such_table", None)
    assert there.value.code == "table_not_found"  # online: the server's own word
    with pytest.raises(TableNotFound) as refused:
        offline.query("SELECT * FROM ordrs", None)
    said = refused.value.message
    assert "not granted" not in said and "server's tables for you" not in said
    assert "cannot be asked" in said and UNREACHABLE in said
    assert "Did you mean 'orders'" in (refused.value.hint or "")
    assert refused.value.details["table"] == "ordrs"


def test_the_catalog_cache_is_written_without_fsync_and_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache written on every catalog call: no fsync on the call's path; a file cut
    short (what a power loss can leave of an unsynced write) reads as no cache."""
    synced: list[int] = []
    real_fsync = os.fsync

    def counted(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counted)
    paths = WorkspacePaths(tmp_path / "ws")
    catalog_cache.save(paths, tables=[{"id": "orders"}], metrics=[])
    assert synced == []
    assert [t["id"] for t in catalog_cache.load(paths).tables] == ["orders"]
    assert [p.name for p in paths.dot.iterdir()] == ["catalog.json"]  # nothing staged left

    paths.catalog.write_text(paths.catalog.read_text()[:20])
    assert catalog_cache.load(paths).tables == []
    catalog_cache.save(paths, tables=[{"id": "customers"}])
    assert [t["id"] for t in catalog_cache.load(paths).tables] == ["customers"]

    atomic.write_text(paths.dot / "durable.txt", "kept")  # the default still syncs
    assert len(synced) == 2


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_mcp_tools_say_they_answer_offline(
    offline: WorkspaceBackend, anyio_backend: str
) -> None:
    """catalog, metrics_list and schema answered the cached listing with nothing saying so
    (the output schemas had no notes), while the CLI said it."""
    from fastmcp import Client

    from agnes_mcp.mcp_server.server import build_single_user_mcp

    async with Client(build_single_user_mcp(offline)) as client:
        for tool, arguments in (
            ("catalog", {}),
            ("metrics_list", {}),
            ("schema", {"table": "orders"}),
        ):
            answer = await client.call_tool(tool, arguments)
            assert answer.structured_content is not None, tool
            (note,) = answer.structured_content["notes"]
            assert note.startswith("The server cannot be reached"), (tool, note)
            text = answer.content[0].text  # type: ignore[union-attr]
            assert f"Note: {note}" in text, tool
