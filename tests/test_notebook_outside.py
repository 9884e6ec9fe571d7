"""``connect()`` from a notebook outside any workspace (tables read through the server until
pulled into a private cache folder), from a workspace's subfolder, and with no token."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from agnes_mcp.notebook import AgnesRefusal, Workspace, connect
from agnes_sync.credentials import write_workspace_entry
from tests.conftest import DemoServer, pull_into_workspace
from tests.notebook_harness import isolate

RECENT = "event_date >= DATE '2026-10-01'"
BY_STATUS = "SELECT status, count(*) AS n FROM orders GROUP BY 1 ORDER BY 1"
JOINED = (
    "SELECT c.segment, count(*) AS sessions FROM recent r JOIN customers c USING (customer_id) "
    "GROUP BY 1 ORDER BY 1"
)


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder that is no workspace, in an env with nothing configured (config and cache
    homes in ``tmp_path``)."""
    isolate(monkeypatch, tmp_path)
    folder = tmp_path / "notebooks"
    folder.mkdir()
    return folder


@pytest.fixture
def outside(demo_server: DemoServer, nowhere: Path) -> Iterator[Workspace]:
    """The analyst's notebook outside any workspace: a fresh cache folder per test."""
    ws = connect(nowhere, server_url=demo_server.live.base_url, token=demo_server.analyst_token)
    try:
        yield ws
    finally:
        ws.close()


def test_outside_with_arguments_reads_server_tables_through_the_server(
    demo_server: DemoServer, outside: Workspace, tmp_path: Path
) -> None:
    assert outside.kind == "outside"
    assert outside.root.is_relative_to(tmp_path / "cache-home" / "agnes" / "notebooks")
    with demo_server.client("analyst") as client:
        served = client.get("/api/catalog").json()["tables"]
    ids = [entry.id for entry in outside.catalog()]
    assert ids == [t["id"] for t in served] and "orders" in ids
    assert not any(entry.in_workspace for entry in outside.catalog())
    result = outside.query(BY_STATUS)
    assert result.provenance.engine == "duckdb (server)"
    assert [r["status"] for r in result.arrow().to_pylist()] == [
        "cancelled",
        "completed",
        "refunded",
    ]
    assert "duckdb (server)" in result._repr_html_()
    assert [c.name for c in outside.schema("orders")][:2] == ["order_id", "customer_id"]
    assert outside.describe("orders", n=2).row_count == 2


def test_outside_from_the_environment(
    demo_server: DemoServer, nowhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGNES_SERVER_URL", demo_server.live.base_url)
    monkeypatch.setenv("AGNES_TOKEN", demo_server.analyst_token)
    ws = connect(nowhere)
    try:
        assert ws.kind == "outside" and ws.backend.api.base_url == demo_server.live.base_url
        with demo_server.client("analyst") as client:
            me = client.get("/api/whoami").json()
        assert ws.whoami().email == me["email"]
        assert "web_sessions" in [e.id for e in ws.catalog(query_mode="remote")]
        assert ws.query("SELECT count(*) AS n FROM customers").arrow().column("n")[0].as_py() > 0
    finally:
        ws.close()


def test_outside_refusals_are_the_servers(outside: Workspace) -> None:
    with pytest.raises(AgnesRefusal) as denied:
        outside.query("SELECT * FROM support_tickets")
    assert denied.value.code == "table_not_found" and "support_tickets" in denied.value.message
    with pytest.raises(AgnesRefusal) as remote:
        outside.query("SELECT device FROM web_sessions")
    assert remote.value.code == "remote_table_needs_snapshot"
    assert remote.value.next_step is not None
    assert [o["tool"] for o in remote.value.next_step["options"]] == [
        "query_remote",
        "snapshot_create",
    ]
    with pytest.raises(AgnesRefusal) as write:
        outside.query("DELETE FROM orders")
    assert write.value.code == "read_only"


def test_a_snapshot_outside_is_queried_locally(outside: Workspace) -> None:
    info = outside.snapshot(
        "web_sessions", ["session_id", "device", "customer_id"], name="recent", where=RECENT
    )
    assert info.rows > 0 and info.location == "workspace"
    assert [s.name for s in outside.snapshots()] == ["recent"]
    result = outside.query("SELECT count(*) AS n FROM recent")
    assert result.arrow().to_pylist() == [{"n": info.rows}]
    assert result.provenance.engine == "duckdb (workspace)"
    assert result.provenance.tables[0].query_mode == "snapshot"


def test_a_snapshot_outside_is_found_in_any_case(outside: Workspace) -> None:
    """DuckDB and the rails match names in any case, quoted or not: so must the choice of
    where a query runs (``FROM RECENT`` went to the server, which has no such table)."""
    info = outside.snapshot("web_sessions", ["session_id"], name="recent", where=RECENT)
    for spelled in ("RECENT", '"Recent"'):
        result = outside.query(f"WITH Recent AS (SELECT 1) SELECT count(*) AS n FROM {spelled}")
        assert result.arrow().to_pylist() == [{"n": 1}]
        result = outside.query(f"SELECT count(*) AS n FROM {spelled}")
        assert result.arrow().to_pylist() == [{"n": info.rows}]
        assert result.provenance.engine == "duckdb (workspace)"


def test_a_snapshot_names_its_table_in_any_case(outside: Workspace) -> None:
    """``schema``, ``describe`` and SQL take ``WEB_SESSIONS`` for ``web_sessions``; a
    snapshot's estimate and creation refused it as a table you may not read."""
    assert outside.snapshot_estimate("WEB_SESSIONS", ["session_id"], where=RECENT).fits_cap
    info = outside.snapshot("Web_Sessions", ["session_id"], name="recent", where=RECENT)
    assert info.table_id == "web_sessions" and info.rows > 0
    assert [s.table_id for s in outside.snapshots()] == ["web_sessions"]


def test_a_snapshot_joined_with_a_table_not_pulled_says_to_pull(outside: Workspace) -> None:
    """The snapshot is here, ``customers`` is on the server: one query cannot read both.
    The refusal must say that (as a workspace says it), not that the snapshot is missing."""
    outside.snapshot(
        "web_sessions", ["session_id", "device", "customer_id"], name="recent", where=RECENT
    )
    with pytest.raises(AgnesRefusal) as refused:
        outside.query(JOINED)
    assert refused.value.code == "table_not_pulled"
    assert "'customers'" in refused.value.message
    assert "no table 'recent'" not in refused.value.message
    assert refused.value.next_step is not None and "pull" in str(refused.value.next_step)


def test_after_pull_queries_run_locally(outside: Workspace) -> None:
    before = outside.query(BY_STATUS)
    assert before.provenance.engine == "duckdb (server)"
    outside.snapshot(
        "web_sessions", ["session_id", "device", "customer_id"], name="recent", where=RECENT
    )
    summary = outside.pull()
    assert summary.failed == [] and summary.downloaded > 0 and summary.tables > 0
    after = outside.query(BY_STATUS)
    assert after.provenance.engine == "duckdb (workspace)"
    assert after.arrow().to_pylist() == before.arrow().to_pylist()
    assert "orders" in [e.id for e in outside.catalog() if e.in_workspace]
    joined = outside.query(JOINED)
    assert joined.provenance.engine == "duckdb (workspace)"
    assert {t.id for t in joined.provenance.tables} == {"recent", "customers"}
    con = outside.duckdb()  # the same join without the rails, on the pulled files
    try:
        expected = con.execute(JOINED).fetchall()
    finally:
        con.close()
    assert [tuple(r.values()) for r in joined.arrow().to_pylist()] == expected
    assert sum(count for _, count in expected) > 0


def test_a_table_not_whole_here_is_read_on_the_server(outside: Workspace) -> None:
    """A pull under way in another kernel (or one that failed) leaves some of a partitioned
    table's parts missing: outside a workspace the server has it whole, so it answers,
    instead of the query being refused as 'not whole here' until the pull ends."""
    expected = outside.query(BY_STATUS).arrow().to_pylist()
    assert outside.pull().failed == []
    parts = sorted((outside.root / ".agnes" / "data" / "orders").rglob("*.parquet"))
    assert len(parts) > 1
    parts[0].unlink()  # as if not fetched yet
    result = outside.query(BY_STATUS)
    assert result.provenance.engine == "duckdb (server)"
    assert result.arrow().to_pylist() == expected


def test_a_snapshot_outside_cannot_take_a_server_tables_name(outside: Workspace) -> None:
    """Nothing is pulled yet, but ``orders`` is a table: a snapshot by that name would
    answer ``SELECT ... FROM orders`` with web sessions now, and be hidden after a pull."""
    for spelled in ("orders", "ORDERS", "Orders"):  # a name is kept lower-cased
        with pytest.raises(AgnesRefusal) as refused:
            outside.snapshot("web_sessions", ["session_id"], name=spelled, where=RECENT)
        assert refused.value.code == "snapshot_invalid" and "orders" in refused.value.message
    assert [s.name for s in outside.snapshots()] == []
    assert (
        outside.query("SELECT count(*) AS n FROM orders").provenance.tables[0].query_mode == "local"
    )


def test_one_server_spelled_in_another_case_keeps_one_cache_folder(nowhere: Path) -> None:
    """The snapshots of ``connect(server_url="HTTP://127.0.0.1:8000")`` went to another
    folder than those of ``http://127.0.0.1:8000``: the same server, its snapshots gone."""
    token = "agnes_abcdefghij_" + "x" * 43
    folders = set()
    for url in ("http://127.0.0.1:8000", "HTTP://127.0.0.1:8000/", "http://LOCALHOST:8000"):
        ws = connect(nowhere, server_url=url, token=token)
        folders.add(ws.root)
        ws.close()
    assert len(folders) == 2  # 127.0.0.1 and localhost are two names, not two spellings
    ws = connect(nowhere, server_url="http://localhost:8000", token=token)
    assert ws.root in folders
    ws.close()


def test_no_token_anywhere_is_refused_with_how_to_give_one(nowhere: Path) -> None:
    with pytest.raises(AgnesRefusal) as refused:
        connect(nowhere)
    assert refused.value.code == "no_token"
    assert refused.value.hint is not None
    assert "AGNES_TOKEN" in refused.value.hint and "token=" in refused.value.hint
    with pytest.raises(AgnesRefusal) as named:
        connect(nowhere, server_url="http://127.0.0.1:9")
    assert named.value.code == "no_token" and "http://127.0.0.1:9" in named.value.message


def test_a_mangled_token_is_refused_in_the_notebooks_words(nowhere: Path) -> None:
    """connect(token=...) with a space inside was refused as "The token given by --token
    holds a space": a flag the notebook never had. The token itself is never echoed."""
    secret = "agnes_abcdefghij_notreallyasecret"
    for token in (f"{secret} pasted twice", "  "):
        with pytest.raises(AgnesRefusal) as refused:
            connect(nowhere, server_url="http://127.0.0.1:9", token=token)
        assert refused.value.code == "credentials_invalid"
        assert "The token given by connect(token=...)" in refused.value.message
        assert "--token" not in str(refused.value) and secret not in str(refused.value)


def test_a_workspace_is_found_from_a_subfolder(
    demo_server: DemoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate(monkeypatch, tmp_path)
    folder = pull_into_workspace(
        demo_server.live.base_url, demo_server.analyst_token, tmp_path / "project"
    )
    deeper = folder / "analysis" / "2026"
    deeper.mkdir(parents=True)
    ws = connect(deeper, server_url=demo_server.live.base_url, token=demo_server.analyst_token)
    try:
        assert ws.kind == "workspace" and ws.root == folder.resolve()
        assert ws.query(BY_STATUS).provenance.engine == "duckdb (workspace)"
    finally:
        ws.close()
    # With no arguments: the current folder upward, and the workspace's own credentials.
    write_workspace_entry(
        folder.resolve(), demo_server.live.base_url, demo_server.analyst_token, None
    )
    monkeypatch.chdir(deeper)
    found = connect()
    try:
        assert found.kind == "workspace" and found.root == folder.resolve()
        assert found.backend.api.base_url == demo_server.live.base_url
        assert found.query(BY_STATUS).row_count == 3
    finally:
        found.close()


BAD_ARGUMENTS = {
    "limit 0": lambda ws: ws.query("SELECT order_id FROM orders", limit=0),
    "limit -5": lambda ws: ws.query("SELECT order_id FROM orders", limit=-5),
    "no SQL": lambda ws: ws.query(""),
    "remote limit 0": lambda ws: ws.query_remote("SELECT device FROM web_sessions", limit=0),
    "remote no SQL": lambda ws: ws.query_remote("   "),
    "a grain that is none": lambda ws: ws.metric("revenue/total_revenue", grain="decade"),
    "a metric limit 0": lambda ws: ws.metric("revenue/total_revenue", limit=0),
}


def test_bad_arguments_are_refused_alike_outside_and_in_a_workspace(
    demo_server: DemoServer, outside: Workspace, tmp_path: Path
) -> None:
    """Outside a workspace (nothing pulled: relayed to the server) and in a pulled one (run
    here), the same bad arguments get the same refusal, as the MCP tools give it, not the
    REST API's own wording of its request schema (``invalid_request``)."""
    folder = pull_into_workspace(
        demo_server.live.base_url, demo_server.analyst_token, tmp_path / "project"
    )
    inside = connect(folder, server_url=demo_server.live.base_url, token=demo_server.analyst_token)
    try:
        for name, call in BAD_ARGUMENTS.items():
            refused = []
            for ws in (outside, inside):
                with pytest.raises(AgnesRefusal) as caught:
                    call(ws)
                refused.append((caught.value.code, caught.value.message))
            assert refused[0] == refused[1], (name, refused)
            assert refused[0][0] != "invalid_request", (name, refused)
    finally:
        inside.close()


def test_a_path_that_does_not_exist_is_refused_not_taken_for_outside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``connect("/home/me/projcet")`` (a typo) fell back to outside-workspace mode, on the
    server and token in the environment: queries went elsewhere than the user meant."""
    isolate(monkeypatch, tmp_path)
    monkeypatch.setenv("AGNES_SERVER_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AGNES_TOKEN", "agnes_x")
    with pytest.raises(AgnesRefusal) as refused:
        connect(tmp_path / "projcet")
    assert refused.value.code == "folder_not_found" and "projcet" in refused.value.message
    notebook = tmp_path / "analysis.ipynb"  # a notebook's own path stands for its folder
    notebook.write_text("{}")
    with connect(notebook) as ws:
        assert ws.kind == "outside"


def _aged(folder: Path, days: float) -> None:
    """``folder`` as if last used ``days`` ago (its mark, .agnes/ and itself)."""
    import time

    then = time.time() - days * 86400
    for path in (folder / ".agnes" / "last-used", folder / ".agnes", folder):
        if path.exists():
            os.utime(path, (then, then), follow_symlinks=False)


def test_cache_folders_unused_for_30_days_are_removed_when_the_cache_is_opened(
    nowhere: Path, tmp_path: Path
) -> None:
    """A folder per server and token: a token replaced left its folder (pulled tables,
    snapshots) in the cache for ever. Opening the cache removes those unused for 30 days,
    never the one opened, one a pull holds, a link (nor what it points to) or a stranger."""
    url = "http://127.0.0.1:9"
    tokens = [f"agnes_abcdefghij_{c * 43}" for c in "abcd"]
    old, recent, pulling, current = (connect(nowhere, server_url=url, token=t) for t in tokens)
    for ws in (old, recent, pulling, current):
        ws.close()
    root = current.root.parent
    assert {old.root, recent.root, pulling.root, current.root} <= set(root.iterdir())
    kept = tmp_path / "elsewhere"
    (kept / ".agnes").mkdir(parents=True)
    (kept / ".agnes" / "precious.parquet").write_bytes(b"x")
    link = root / "0123456789abcdef"
    link.symlink_to(kept, target_is_directory=True)
    stranger = root / "not-a-cache-folder"
    stranger.mkdir()
    for folder in (old.root, pulling.root, kept, stranger, current.root):
        _aged(folder, 31)
    _aged(link, 31)
    _aged(recent.root, 29)
    lock = os.open(pulling.root / ".agnes" / "pull.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a pull under way in another kernel
        again = connect(nowhere, server_url=url, token=tokens[3])
        again.close()
    finally:
        os.close(lock)
    assert again.root == current.root and current.root.is_dir()  # the one opened: never
    assert not old.root.exists()
    assert recent.root.is_dir() and pulling.root.is_dir() and stranger.is_dir()
    assert link.is_symlink() and (kept / ".agnes" / "precious.parquet").exists()
