"""A snapshot (or kept result) and a table added later under the same name.

The server read the snapshot (its view was registered over the table's) while planning
and provenance said the table; a workspace read the table while ``snapshot_list`` still
offered the snapshot. Both now refuse the name as ambiguous, the same way, for a table
the caller may read; one they may not read does not hide (or reveal) anything.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pyarrow as pa
import pytest

from agnes_mcp.mcp_server.result_store import ResultStore
from agnes_mcp.mcp_server.server_backend import ServerBackend
from agnes_mcp.rails.refusals import TableNameAmbiguous
from agnes_mcp.resource_types import ResourceType
from agnes_sync.snapshot_files import SnapshotFiles
from agnes_sync.snapshot_meta import SnapshotMeta
from agnes_sync.workspace.layout import WorkspacePaths
from tests.conftest import DemoServer, add_user, pulled_workspace, token_for

SHADOW_ROWS = 3  # the snapshot's rows: no demo table has so few


def _snapshot_named(files: SnapshotFiles, name: str) -> None:
    """A snapshot of web_sessions under ``name``, as one taken before a table of that name
    existed leaves it."""
    meta = SnapshotMeta(
        name=name,
        table_id="web_sessions",
        select=["device"],
        sql="SELECT device FROM web_sessions",
        created_at=dt.datetime.now(dt.UTC),
        rows=SHADOW_ROWS,
        bytes=1,
    )
    files.save(pa.table({"device": ["a", "b", "c"]}), meta)


def test_the_server_refuses_a_name_both_a_table_and_a_snapshot(demo_server: DemoServer) -> None:
    services = demo_server.live.services
    group = services.groups.add(f"shadows-{time.monotonic_ns()}", "")
    services.grants.add(group.id, ResourceType.TABLE, "web_sessions", granted_by="test")
    customers = services.grants.add(group.id, ResourceType.TABLE, "customers", granted_by="test")
    principal = services.tokens.authenticate(
        token_for(services, add_user(services, groups=(group.id,)))
    )
    backend = ServerBackend(services, principal, ResultStore())
    _snapshot_named(services.stored_snapshots.files(principal), "customers")

    with pytest.raises(TableNameAmbiguous) as refused:
        backend.query("SELECT count(*) AS n FROM customers", None)
    assert "snapshot of web_sessions" in refused.value.message
    assert refused.value.next_step["tool"] == "snapshot_drop"
    with pytest.raises(TableNameAmbiguous):
        backend.schema("customers")
    listed = {s.name: s for s in backend.snapshot_list()}
    assert any("refused as ambiguous" in note for note in listed["customers"].notes)

    services.grants.delete(customers.id)  # a table they may not read: their own name
    mine = backend.query("SELECT count(*) AS n FROM customers", None)
    assert mine.table.to_pylist() == [{"n": SHADOW_ROWS}]
    assert mine.provenance.tables[0].query_mode == "snapshot"

    services.grants.add(group.id, ResourceType.TABLE, "customers", granted_by="test")
    backend.snapshot_drop("customers")
    table = backend.query("SELECT count(*) AS n FROM customers", None)
    assert table.table.to_pylist()[0]["n"] > SHADOW_ROWS
    assert table.provenance.tables[0].query_mode == "local"


def test_a_workspace_refuses_it_the_same_way(demo_server: DemoServer, tmp_path: Path) -> None:
    with pulled_workspace(demo_server, tmp_path) as backend:
        _snapshot_named(SnapshotFiles(WorkspacePaths(tmp_path).snapshots), "customers")
        with pytest.raises(TableNameAmbiguous) as refused:
            backend.query("SELECT count(*) AS n FROM customers", None)
        assert "snapshot of web_sessions" in refused.value.message
        for call in (lambda: backend.schema("customers"), lambda: backend.describe("customers", 2)):
            with pytest.raises(TableNameAmbiguous):  # schema mixed the two up
                call()
        listed = {s.name: s for s in backend.snapshot_list()}
        assert any("refused as ambiguous" in note for note in listed["customers"].notes)
        backend.snapshot_drop("customers")
        answer = backend.query("SELECT count(*) AS n FROM customers", None)
        assert answer.table.to_pylist()[0]["n"] > SHADOW_ROWS


def test_a_snapshot_kept_under_a_name_now_refused_breaks_nothing(
    demo_server: DemoServer,
) -> None:
    """Snapshots may no longer be named like DuckDB's own objects (duckdb_*); one taken
    before that rule stays listed and can be dropped, and the user's other queries run."""
    services = demo_server.live.services
    group = services.groups.add(f"internal-{time.monotonic_ns()}", "")
    services.grants.add(group.id, ResourceType.TABLE, "web_sessions", granted_by="test")
    token = token_for(services, add_user(services, groups=(group.id,)))
    principal = services.tokens.authenticate(token)
    _snapshot_named(services.stored_snapshots.files(principal), "duckdb_old")
    with demo_server.live.client(token) as client:
        answer = client.post("/api/query", json={"sql": "SELECT 42 AS n"})
        assert answer.status_code == 200 and answer.json()["rows"] == [[42]]
        listed = client.get("/api/snapshots/stored").json()
        assert "duckdb_old" in [s["name"] for s in listed["snapshots"]]
        assert client.delete("/api/snapshots/stored/duckdb_old").status_code == 200
