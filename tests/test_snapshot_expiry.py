"""A snapshot past its lifetime: a workspace still answered from its rows until something
listed the snapshots, then said there was no such table; the server said only the latter.
Both now refuse it as expired, with the call that takes it again."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pyarrow as pa
import pytest

from agnes_mcp.mcp_server.result_store import ResultStore
from agnes_mcp.mcp_server.server_backend import ServerBackend
from agnes_mcp.rails.refusals import SnapshotExpired
from agnes_mcp.resource_types import ResourceType
from agnes_sync.snapshot_files import SnapshotFiles
from agnes_sync.snapshot_meta import SnapshotMeta
from agnes_sync.workspace.layout import WorkspacePaths
from tests.conftest import DemoServer, add_user, pulled_workspace, token_for


def _expired(files: SnapshotFiles, name: str) -> None:
    """A snapshot of web_sessions taken two minutes ago with a one-minute lifetime."""
    meta = SnapshotMeta(
        name=name,
        table_id="web_sessions",
        select=["device"],
        where="event_date >= DATE '2026-10-01'",
        sql="SELECT device FROM web_sessions",
        created_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2),
        rows=1,
        bytes=1,
        ttl_seconds=60,
    )
    files.save(pa.table({"device": ["kept after expiry"]}), meta)


def _said(refused: SnapshotExpired, name: str) -> None:
    assert f"snapshot '{name}' expired at" in refused.message
    step = refused.next_step
    assert step is not None and step["tool"] == "snapshot_create"
    assert step["arguments"] == {
        "table": "web_sessions",
        "select": ["device"],
        "where": "event_date >= DATE '2026-10-01'",
        "name": name,
    }


def test_the_server_says_a_snapshot_expired(demo_server: DemoServer) -> None:
    services = demo_server.live.services
    group = services.groups.add(f"expiry-{time.monotonic_ns()}", "")
    services.grants.add(group.id, ResourceType.TABLE, "web_sessions", granted_by="test")
    token = token_for(services, add_user(services, groups=(group.id,)))
    principal = services.tokens.authenticate(token)
    backend = ServerBackend(services, principal, ResultStore())
    _expired(services.stored_snapshots.files(principal), "old_devices")
    with demo_server.live.client(token) as client:  # REST said "no table"
        answer = client.post("/api/query", json={"sql": "SELECT * FROM old_devices"})
    assert answer.status_code == 410 and answer.json()["error"]["code"] == "snapshot_expired"
    for call in (
        lambda: backend.query("SELECT * FROM old_devices", None),
        lambda: backend.schema("old_devices"),
        lambda: backend.describe("old_devices", 3),
    ):
        with pytest.raises(SnapshotExpired) as refused:
            call()
        _said(refused.value, "old_devices")


def test_a_workspace_does_not_read_an_expired_snapshot(
    demo_server: DemoServer, tmp_path: Path
) -> None:
    with pulled_workspace(demo_server, tmp_path) as backend:
        _expired(SnapshotFiles(WorkspacePaths(tmp_path).snapshots), "old_devices")
        for call in (
            lambda: backend.query("SELECT * FROM old_devices", None),
            lambda: backend.schema("old_devices"),  # it still answered
            lambda: backend.describe("old_devices", 2),
        ):
            with pytest.raises(SnapshotExpired) as refused:
                call()
            _said(refused.value, "old_devices")
