"""The registry and sync API over HTTP, and the CLI that mirrors it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import pytest

from agnes_mcp.resource_types import ResourceType
from cli import exit_codes
from cli.main import main
from tests.conftest import LiveServer, add_user, running_server, token_for
from tests.test_api_http import assert_error


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("sources")
    (root / "files").mkdir()
    (root / "files" / "people.csv").write_text(
        "id,name,joined\n1,Ada,2026-01-02\n2,Bo,2026-02-03\n"
    )
    (root / "files" / "sub").mkdir()
    (root / "files" / "sub" / "nums.tsv").write_text("n\tsquare\n1\t1\n2\t4\n")
    warehouse = root / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute(
        "CREATE TABLE visits AS SELECT range AS id, DATE '2026-01-01' + range::INTEGER AS day FROM range(40)"
    )
    con.close()
    sources = {
        "files": {"connector": "files", "options": {"path": str(root / "files")}},
        "warehouse": {"connector": "duckdb_warehouse", "options": {"path": str(warehouse)}},
    }
    with running_server(root / "data", sources=sources, scheduler_enabled=False) as live:
        yield live


@pytest.fixture
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client(server.admin_token) as client:
        yield client


def register(admin: httpx.Client, body: dict, **params: str) -> httpx.Response:
    return admin.post("/api/admin/register-table", json=body, params=params)


def test_sources_and_what_they_offer(admin: httpx.Client) -> None:
    sources = {s["name"]: s for s in admin.get("/api/admin/sources").json()["sources"]}
    assert set(sources) == {"files", "warehouse"}
    assert "remote" in sources["warehouse"]["capabilities"]
    offered = admin.get("/api/admin/sources/files/tables").json()["tables"]
    assert {(t["bucket"], t["source_table"]) for t in offered} == {
        (None, "people.csv"),
        ("sub", "nums.tsv"),
    }
    assert_error(admin.get("/api/admin/sources/nope/tables"), 422, "source_not_configured")


def test_dry_run_validates_and_stores_nothing(admin: httpx.Client) -> None:
    body = {
        "id": "people_dry",
        "source_type": "files",
        "source_table": "people.csv",
        "primary_key": ["id"],
    }
    response = register(admin, body, dry_run="true")
    assert response.status_code == 200
    result = response.json()
    assert result["dry_run"] is True
    assert [c["name"] for c in result["columns"]] == ["id", "name", "joined"]
    assert all(t["id"] != "people_dry" for t in admin.get("/api/admin/registry").json()["tables"])


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        ({"id": "x1", "source_type": "nope"}, 422, "source_not_configured", "files, warehouse"),
        (
            {"id": "x2", "source_type": "files", "source_table": "absent.csv"},
            404,
            "source_table_not_found",
            "people.csv",
        ),
        (
            {
                "id": "x3",
                "source_type": "files",
                "source_table": "people.csv",
                "primary_key": ["idd"],
            },
            422,
            "invalid_table_spec",
            "Did you mean 'id'",
        ),
        (
            {
                "id": "x4",
                "source_type": "files",
                "source_table": "people.csv",
                "sync_strategy": "incremental",
            },
            422,
            "invalid_table_spec",
            "incremental-column",
        ),
        (
            {
                "id": "x5",
                "source_type": "files",
                "source_table": "people.csv",
                "sync_strategy": "partitioned",
                "partition_by": "name",
                "partition_granularity": "month",
            },
            422,
            "invalid_table_spec",
            "DATE or TIMESTAMP",
        ),
        (
            {
                "id": "x6",
                "source_type": "files",
                "source_table": "people.csv",
                "query_mode": "remote",
            },
            422,
            "connector_capability_missing",
            "remote",
        ),
        (
            {
                "id": "x7",
                "source_type": "files",
                "source_table": "people.csv",
                "sync_schedule": "whenever",
            },
            422,
            "invalid_schedule",
            "every 15m",
        ),
        (
            {
                "id": "x8",
                "source_type": "files",
                "source_table": "people.csv",
                "where_filters": "id IN (SELECT 1)",
            },
            422,
            "invalid_table_spec",
            "subqueries",
        ),
        (  # a filter that cannot apply to the columns: refused now, not at every sync
            {
                "id": "x11",
                "source_type": "files",
                "source_table": "people.csv",
                "where_filters": "name > 10",
            },
            422,
            "invalid_table_spec",
            "cannot be applied to the table's columns",
        ),
        (
            {"id": "x9", "source_type": "warehouse", "query_mode": "materialized"},
            422,
            "invalid_table_spec",
            "needs SQL",
        ),
        (
            {
                "id": "x10",
                "source_type": "files",
                "source_table": "people.csv",
                "source_options": {"delim": ";"},
            },
            422,
            "invalid_table_spec",
            "delimiter",
        ),
        (  # days cannot be counted back from a number
            {
                "id": "x12",
                "source_type": "files",
                "source_table": "people.csv",
                "sync_strategy": "incremental",
                "incremental_column": "id",
                "primary_key": ["id"],
                "max_history_days": 30,
            },
            422,
            "invalid_table_spec",
            "max_history_days count(s) days back from the newest 'id', which is BIGINT",
        ),
        ({"id": "Bad-Name", "source_type": "files"}, 422, "invalid_request", "lowercase"),
    ],
)
def test_registration_is_validated_against_the_source(
    admin: httpx.Client, body: dict, status: int, code: str, words: str
) -> None:
    error = assert_error(register(admin, body), status, code)
    assert words in error["message"] + (error["hint"] or "")
    assert all(t["id"] != body["id"] for t in admin.get("/api/admin/registry").json()["tables"])


def test_register_sync_status_update_unregister(server: LiveServer, admin: httpx.Client) -> None:
    body = {
        "id": "people",
        "source_type": "files",
        "source_table": "people.csv",
        "primary_key": ["id"],
        "description": "Everyone",
        "sync_schedule": "every 1h",
    }
    created = register(admin, body, sync="false")
    assert created.status_code == 201 and created.json()["initial_sync"] is None
    assert_error(register(admin, body), 409, "table_exists")

    result = admin.post("/api/sync/trigger", json={"table_id": "people"}).json()["results"][0]
    assert (result["status"], result["rows"], result["files"]) == ("ok", 2, 1)
    entry = next(
        t for t in admin.get("/api/admin/registry").json()["tables"] if t["id"] == "people"
    )
    assert entry["sync"]["status"] == "ok" and entry["sync"]["rows"] == 2 and entry["next_run"]

    updated = admin.put(
        "/api/admin/registry/people", json={"description": "Updated", "where_filters": "id > 1"}
    )
    assert updated.status_code == 200 and updated.json()["table"]["description"] == "Updated"
    assert updated.json()["table"]["primary_key"] == ["id"]  # untouched fields keep their value
    # a new row filter reaches the data at once: the update started a sync applying it
    assert updated.json()["resync"] == "queued"
    resync = server.services.sync.scheduler.latest("people")
    assert resync is not None and resync.result(timeout=60).status == "ok"  # type: ignore[attr-defined]
    con = server.services.orchestrator.connect()
    assert con.execute("SELECT count(*) FROM people").fetchone() == (1,)
    con.close()
    assert_error(
        admin.put("/api/admin/registry/people", json={"primary_key": ["nope"]}),
        422,
        "invalid_table_spec",
    )
    assert_error(
        admin.put("/api/admin/registry/people", json={"id": "other"}), 422, "invalid_request"
    )
    for unset in ("query_mode", "server_only", "source_options"):  # null is no value: a 500
        refused = assert_error(
            admin.put("/api/admin/registry/people", json={unset: None}), 422, "invalid_request"
        )
        assert [f["field"] for f in refused["details"]["fields"]] == [unset]
    listed = admin.get("/api/admin/registry").json()["tables"]
    people = next(t for t in listed if t["id"] == "people")
    assert people["query_mode"] == "local"  # unchanged
    # what is read when the table is served needs no sync
    described = admin.put("/api/admin/registry/people", json={"description": "Again"})
    assert described.status_code == 200 and described.json()["resync"] is None

    runs = admin.get("/api/sync/history", params={"table": "people"}).json()["runs"]
    for limit in (-1, 0, 10**9):  # -1 was taken silently
        assert_error(
            admin.get("/api/sync/history", params={"limit": limit}), 422, "invalid_request"
        )
    assert [r["status"] for r in runs] == ["ok", "ok"]

    assert admin.delete("/api/admin/registry/people").json() == {"deleted": "people"}
    assert_error(admin.delete("/api/admin/registry/people"), 404, "table_not_registered")
    extract = server.services.settings.extracts_dir / "files"
    assert not (extract / "data" / "people.parquet").exists()
    con = server.services.orchestrator.connect()
    assert "people" not in {r[0] for r in con.execute("SELECT table_name FROM _catalog").fetchall()}
    con.close()


def test_remote_and_materialized_from_the_warehouse(admin: httpx.Client) -> None:
    remote = {
        "id": "visits",
        "source_type": "warehouse",
        "bucket": "main",
        "source_table": "visits",
        "query_mode": "remote",
        "partition_by": "day",
    }
    assert register(admin, remote, sync="false").status_code == 201
    materialized = {
        "id": "visits_by_month",
        "source_type": "warehouse",
        "query_mode": "materialized",
        "source_query": "SELECT date_trunc('month', day) AS month, count(*) AS n FROM visits GROUP BY 1",
    }
    assert register(admin, materialized, sync="false").status_code == 201
    results = admin.post("/api/sync/trigger", json={}).json()["results"]
    by_id = {r["table_id"]: r for r in results}
    assert (
        by_id["visits"]["status"] == "ok"
        and by_id["visits"]["rows"] == 40
        and by_id["visits"]["files"] == 0
    )
    assert by_id["visits_by_month"]["rows"] == 2


def test_trigger_without_wait_queues(admin: httpx.Client) -> None:
    register(
        admin,
        {"id": "nums", "source_type": "files", "bucket": "sub", "source_table": "nums.tsv"},
        sync="false",
    )
    response = admin.post("/api/sync/trigger", json={"table_id": "nums", "wait": False})
    assert response.status_code == 202 and response.json()["queued"] == ["nums"]
    assert_error(
        admin.post("/api/sync/trigger", json={"table_id": "ghost"}), 404, "table_not_registered"
    )


def test_status_is_filtered_by_grants(server: LiveServer, admin: httpx.Client) -> None:
    register(
        admin,
        {"id": "granted_t", "source_type": "files", "source_table": "people.csv"},
        sync="false",
    )
    register(
        admin,
        {"id": "hidden_t", "source_type": "files", "source_table": "people.csv"},
        sync="false",
    )
    services = server.services
    group = services.groups.add("Readers")
    services.grants.add(group.id, ResourceType.TABLE, "granted_t")
    reader = add_user(services, (group.id,))
    with server.client(token_for(services, reader)) as client:
        status = client.get("/api/sync/status").json()
        assert_error(client.post("/api/sync/trigger", json={}), 403, "admin_required")
        assert_error(client.get("/api/admin/registry"), 403, "admin_required")
    names = {t["table_id"] for t in status["tables"]}
    assert "granted_t" in names and "hidden_t" not in names
    assert status["conflicts"] == [] and status["problems"] == []
    admin_names = {t["table_id"] for t in admin.get("/api/sync/status").json()["tables"]}
    assert {"granted_t", "hidden_t"} <= admin_names


def test_cli_mirrors_the_registry(
    capsys: pytest.CaptureFixture[str], server: LiveServer, tmp_path: Path
) -> None:
    flags = ["--server-url", server.base_url, "--token", server.admin_token]
    query = tmp_path / "q.sql"
    query.write_text("SELECT count(*) AS n FROM visits")

    def run(*argv: str) -> tuple[int, dict]:
        capsys.readouterr()
        code = main([*argv, *flags, "--json"])
        out = capsys.readouterr().out
        return code, json.loads(out) if out.strip() else {}

    code, result = run(
        "admin",
        "register-table",
        "visit_count",
        "--source-type",
        "warehouse",
        "--query-mode",
        "materialized",
        "--query",
        f"@{query}",
        "--dry-run",
    )
    assert code == 0 and result["dry_run"] is True and result["columns"][0]["name"] == "n"
    code, result = run(
        "admin",
        "register-table",
        "people_cli",
        "--source-type",
        "files",
        "--source-table",
        "people.csv",
        "--primary-key",
        "id",
        "--source-option",
        "header=true",
        "--source-option",
        "delimiter=,",
        "--no-sync",
    )
    assert code == 0 and result["table"]["source_options"] == {"header": True, "delimiter": ","}
    code, result = run("admin", "sync", "people_cli")
    assert code == 0 and result["results"][0]["rows"] == 2
    code, result = run(
        "admin", "update-table", "people_cli", "--description", "via CLI", "--no-server-only"
    )
    assert code == 0 and result["table"]["description"] == "via CLI"
    code, result = run("admin", "list-tables")
    assert any(t["id"] == "people_cli" and t["sync"]["status"] == "ok" for t in result["tables"])
    code, result = run("admin", "sync-status")
    assert code == 0 and any(t["table_id"] == "people_cli" for t in result["tables"])
    code, result = run("admin", "unregister-table", "people_cli")
    assert code == 0 and result == {"deleted": "people_cli"}
    code, result = run(
        "admin", "register-table", "broken", "--source-type", "files", "--source-table", "nope.csv"
    )
    assert code == 1 and result["error"]["code"] == "source_table_not_found"


def test_what_a_sync_says_besides_its_counts_is_printed(
    capsys: pytest.CaptureFixture[str], server: LiveServer
) -> None:
    """A sync's notes (an empty file of a glob left out, a decimal read as DOUBLE, a
    schema change) were in `--json` only: `agnes admin sync` and `sync-history` printed
    their tables without them. Each is printed under the table."""
    folder = Path(server.services.settings.sources["files"].options["path"])
    (folder / "parts-1.csv").write_text("id,name\n1,bolt\n")
    (folder / "parts-2.csv").write_text("")
    flags = ["--server-url", server.base_url, "--token", server.admin_token]
    argv = ["admin", "register-table", "parts", "--source-type", "files"]
    assert main([*argv, "--source-table", "parts-*.csv", "--no-sync", *flags]) == 0
    capsys.readouterr()
    assert main(["admin", "sync", "parts", *flags]) == exit_codes.OK
    said = capsys.readouterr().out.splitlines()
    assert said[-1].startswith("note: parts: 1 empty file of the glob left out") and (
        "parts-2.csv" in said[-1]
    )
    assert main(["admin", "sync-history", "parts", *flags]) == exit_codes.OK
    said = capsys.readouterr().out.splitlines()
    assert any(line.startswith("note: run ") and "parts-2.csv" in line for line in said), said
