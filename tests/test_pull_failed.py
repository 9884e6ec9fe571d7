"""A workspace whose last pull failed: the old copy still answers, and every answer that
reads it says since when its data is, that the last pull failed and why, and how to
retry; a pull that succeeds clears it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from agnes_mcp.mcp_server.workspace_backend import WorkspaceBackend
from agnes_mcp.query.workspace_query import WorkspaceQuery
from agnes_sync.pull.pull import pull
from agnes_sync.server_api import ServerApi, ServerUnreachable
from agnes_sync.workspace.layout import WorkspacePaths
from cli import exit_codes
from cli.main import main
from tests.conftest import DemoServer, pull_into_workspace
from tests.fault_proxy import FaultProxy

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens


def notes(paths: WorkspacePaths, sql: str) -> list[str]:
    query = WorkspaceQuery(paths)
    try:
        return query.run(sql, None).notes()
    finally:
        query.close()


def test_answers_from_a_workspace_whose_last_pull_failed_say_so(
    demo_server: DemoServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = pull_into_workspace(demo_server.live.base_url, demo_server.analyst_token, tmp_path)
    paths = WorkspacePaths(folder)
    sql = "SELECT count(*) FROM customers"
    assert notes(paths, sql) == []

    with pytest.raises(ServerUnreachable):
        pull(paths, ServerApi(UNREACHABLE, demo_server.analyst_token))
    (said,) = notes(paths, sql)
    assert said.startswith("customers is from the pull of ") and " UTC" in said
    assert "the last pull, at " in said and "failed (" in said
    assert "run 'agnes pull' to retry" in said

    # agnes query prints it too, and agnes catalog and schema (offline: the pulled copy's)
    monkeypatch.setenv("AGNES_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("AGNES_SERVER_URL", UNREACHABLE)
    monkeypatch.setenv("AGNES_TOKEN", demo_server.analyst_token)
    code = main(["query", "--workspace", str(folder), sql, "--json"])
    assert code == exit_codes.OK
    assert json.loads(capsys.readouterr().out)["notes"] == [said]
    for command in (["catalog"], ["schema", "customers"]):
        assert main([*command, "--workspace", str(folder), "--json"]) == exit_codes.OK
        assert said in json.loads(capsys.readouterr().out)["notes"]

    # a pull that succeeds clears it
    pull(paths, ServerApi(demo_server.live.base_url, demo_server.analyst_token))
    assert notes(paths, sql) == []


def test_a_table_whose_file_failed_to_download_says_so_and_only_it(
    demo_server: DemoServer, tmp_path: Path
) -> None:
    folder = pull_into_workspace(demo_server.live.base_url, demo_server.analyst_token, tmp_path)
    paths = WorkspacePaths(folder)
    # an older copy of customers, which the next pull sets out to replace
    older = paths.data / "customers.parquet"
    staged = tmp_path / "older.parquet"
    duckdb.sql(f"COPY (SELECT * FROM '{older}' LIMIT 3) TO '{staged}' (FORMAT parquet)")
    shutil.move(staged, older)
    with FaultProxy(demo_server.live.base_url) as proxy:
        proxy.mode = "error"
        summary = pull(paths, ServerApi(proxy.url, demo_server.analyst_token))
    assert [f["file"] for f in summary.failed] == ["customers.parquet"]
    (said,) = notes(paths, "SELECT count(*) FROM customers")
    assert said.startswith("customers is from the pull of ") and "did not download" in said
    assert notes(paths, "SELECT count(*) FROM products") == []
    # the catalog and schema, read from the server, say it of the copy here, and only of it
    backend = WorkspaceBackend(
        paths, ServerApi(demo_server.live.base_url, demo_server.analyst_token)
    )
    assert backend.catalog(None, None).notes == [said]
    assert backend.schema("customers").notes[-1:] == [said]
    assert said not in backend.schema("products").notes
