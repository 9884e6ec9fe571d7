"""``agnes pull`` against a real server: first and unchanged pulls, changes, revoked
grants, resumed and ranged downloads, a server that misbehaves, output modes, a lock,
and SIGKILL at each stage of a pull (told by the pull's test hook when it is there)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from agnes_mcp.resource_types import ResourceType
from agnes_sync.hashing import file_hash
from agnes_sync.manifest import Manifest
from agnes_sync.pull.download import partial_path
from agnes_sync.pull.progress import Quiet
from agnes_sync.pull.pull import PullBusy, PullSummary, pull
from agnes_sync.server_api import ServerApi
from agnes_sync.workspace.layout import WorkspacePaths
from agnes_sync.workspace.lock import workspace_lock
from cli import exit_codes
from cli.main import main
from tests.cli_harness import limited_command
from tests.conftest import (
    DemoServer,
    add_user,
    empty_workspace,
    register,
    running_demo,
    token_for,
)
from tests.fault_proxy import FaultProxy

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with running_demo(tmp_path_factory.mktemp("pull-server")) as demo:
        yield demo


@pytest.fixture
def user_token(server: DemoServer) -> str:
    """A user of their own (grants change in some tests), granted the Analysts' tables."""
    services = server.live.services
    group = services.groups.add(f"pullers-{time.monotonic_ns()}", "")
    for table in ("customers", "products", "orders", "web_sessions"):
        services.grants.add(group.id, ResourceType.TABLE, table, granted_by="test")
    return token_for(services, add_user(services, groups=(group.id,)))


def api(server: DemoServer, token: str, url: str | None = None) -> ServerApi:
    return ServerApi(url or server.live.base_url, token)


def manifest(server: DemoServer, token: str) -> Manifest:
    return Manifest.model_validate(api(server, token).get("/api/sync/manifest"))


def verified(paths: WorkspacePaths, wanted: Manifest) -> dict[str, bool]:
    """Every visible .parquet: does it hold exactly what the manifest says?"""
    expected = {p.path: p.hash for t in wanted.tables for p in t.parts}
    found = {}
    for path in paths.data.rglob("*.parquet"):
        relative = str(path.relative_to(paths.data))
        if any(part.startswith(".") for part in Path(relative).parts):
            continue
        found[relative] = expected.get(relative) == file_hash(path)
    return found


def test_first_pull_then_nothing_to_do(server: DemoServer, user_token: str, tmp_path: Path) -> None:
    paths = WorkspacePaths(tmp_path)
    first = pull(paths, api(server, user_token))
    wanted = manifest(server, user_token)
    parts = sum(len(t.parts) for t in wanted.tables)
    assert first.downloaded == parts and first.failed == [] and first.tables == 3
    assert first.bytes == sum(p.size for t in wanted.tables for p in t.parts)
    assert verified(paths, wanted) == {p.path: True for t in wanted.tables for p in t.parts}
    con = duckdb.connect(str(paths.db), read_only=True)
    rows = con.execute("SELECT count(*) FROM orders").fetchone()
    assert rows is not None and rows[0] == sum(
        t.rows or 0 for t in wanted.tables if t.id == "orders"
    )
    con.close()
    db_time = paths.db.stat().st_mtime_ns
    again = pull(paths, api(server, user_token))
    assert (again.downloaded, again.unchanged, again.removed) == (0, parts, 0)
    assert paths.db.stat().st_mtime_ns == db_time  # nothing changed, nothing rebuilt
    remote = json.loads(paths.manifest.read_text())["remote_tables"]
    assert [r["id"] for r in remote] == ["web_sessions"]


def test_only_what_changed_is_fetched(server: DemoServer, user_token: str, tmp_path: Path) -> None:
    paths = WorkspacePaths(tmp_path)
    pull(paths, api(server, user_token))
    services = server.live.services
    source = services.settings.sources["files"].options["path"]
    csv = Path(source) / "customers.csv"
    original = csv.read_text()
    csv.write_text(original.replace("@example.com", "@mail.example.com", 1))
    try:
        assert services.sync.sync_many(["customers"], "test")[0].status == "ok"
        result = pull(paths, api(server, user_token))
        assert result.downloaded == 1 and result.failed == []
        con = duckdb.connect(str(paths.db), read_only=True)
        assert con.execute(
            "SELECT count(*) FROM customers WHERE email LIKE '%mail.example.com'"
        ).fetchone() == (1,)
        con.close()
    finally:
        csv.write_text(original)
        services.sync.sync_many(["customers"], "test")


def test_a_revoked_grant_removes_file_and_view(server: DemoServer, tmp_path: Path) -> None:
    services = server.live.services
    group = services.groups.add(f"revoked-{time.monotonic_ns()}", "")
    keep = services.grants.add(group.id, ResourceType.TABLE, "customers", granted_by="test")
    goes = services.grants.add(group.id, ResourceType.TABLE, "orders", granted_by="test")
    token = token_for(services, add_user(services, groups=(group.id,)))
    paths = WorkspacePaths(tmp_path)
    pull(paths, api(server, token))
    assert (paths.data / "orders").is_dir()
    services.grants.delete(goes.id)
    result = pull(paths, api(server, token))
    assert result.removed > 10 and not (paths.data / "orders").exists()
    con = duckdb.connect(str(paths.db), read_only=True)
    views = {
        r[0]
        for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    }
    con.close()
    assert "orders" not in views and "customers" in views
    assert keep is not None


def test_a_revoked_grant_takes_what_was_made_from_the_table_too(
    server: DemoServer, tmp_path: Path
) -> None:
    """After a revoke and a pull, the table's file was gone but a snapshot of it (a remote
    table: never pulled) and the kept results stayed readable in the workspace. A pull now
    removes the snapshots of tables no longer granted, and the kept results (which do not
    say what they read); what is still granted stays."""
    import datetime as dt

    import pyarrow as pa

    from agnes_sync.snapshot_files import SnapshotFiles
    from agnes_sync.snapshot_meta import SnapshotMeta
    from agnes_sync.workspace import results

    services = server.live.services
    group = services.groups.add(f"forgets-{time.monotonic_ns()}", "")
    services.grants.add(group.id, ResourceType.TABLE, "customers", granted_by="test")
    remote = services.grants.add(group.id, ResourceType.TABLE, "web_sessions", granted_by="test")
    token = token_for(services, add_user(services, groups=(group.id,)))
    paths = WorkspacePaths(tmp_path)
    pull(paths, api(server, token))
    snapshots = SnapshotFiles(paths.snapshots)

    def snapshot(name: str, table_id: str) -> None:
        meta = SnapshotMeta(
            name=name,
            table_id=table_id,
            select=["x"],
            sql="SELECT 1",
            created_at=dt.datetime.now(dt.UTC),
            rows=1,
            bytes=1,
        )
        snapshots.save(pa.table({"x": [1]}), meta)

    snapshot("of_sessions", "web_sessions")
    snapshot("of_customers", "customers")
    kept = results.keep(paths.results, pa.table({"x": [1]}))
    assert pull(paths, api(server, token)).forgotten == 0  # nothing revoked: all stays
    services.grants.delete(remote.id)
    result = pull(paths, api(server, token))
    assert result.forgotten == 2  # the snapshot of web_sessions, and the kept result
    assert [m.name for m in snapshots.all()] == ["of_customers"]
    assert not (paths.results / f"{kept}.parquet").exists()


def test_a_changed_local_file_is_checked_and_restored(
    server: DemoServer, user_token: str, tmp_path: Path
) -> None:
    paths = WorkspacePaths(tmp_path)
    pull(paths, api(server, user_token))
    target = paths.data / "customers.parquet"
    good = target.read_bytes()
    target.write_bytes(good[:10] + bytes([good[10] ^ 1]) + good[11:])  # same size, other bytes
    result = pull(paths, api(server, user_token))
    assert result.downloaded == 1 and target.read_bytes() == good
    touched = paths.data / "products.parquet"
    os.utime(touched, ns=(1, 1))  # new mtime, same bytes: hashed, not fetched
    assert pull(paths, api(server, user_token)).downloaded == 0


def test_an_interrupted_download_resumes(
    server: DemoServer, user_token: str, tmp_path: Path
) -> None:
    paths = WorkspacePaths(tmp_path)
    wanted = manifest(server, user_token)
    part = next(t for t in wanted.tables if t.id == "customers").parts[0]
    with api(server, user_token).stream("GET", "/api/data/customers/download") as response:
        body = response.read()
    assert len(body) == part.size
    partial = partial_path(paths.data / "customers.parquet", part.hash)
    partial.parent.mkdir(parents=True)
    partial.write_bytes(body[: part.size // 2])
    services = server.live.services
    services.write_behind.flush()
    pull(paths, api(server, user_token))
    assert (paths.data / "customers.parquet").read_bytes() == body and not partial.exists()
    services.write_behind.flush()
    ranges = [
        r.params.get("range")
        for r in services.audit_log.recent(limit=200)
        if r.action == "data.download" and r.resource == "customers"
    ]
    assert f"bytes={part.size // 2}-" in ranges


def test_large_files_come_in_parallel_ranges(
    server: DemoServer, user_token: str, tmp_path: Path
) -> None:
    paths = WorkspacePaths(tmp_path)
    result = pull(paths, api(server, user_token), range_bytes=256)
    wanted = manifest(server, user_token)
    assert result.failed == [] and all(verified(paths, wanted).values())
    services = server.live.services
    services.write_behind.flush()
    ranged = [
        r
        for r in services.audit_log.recent(limit=2000)
        if r.action == "data.download"
        and (r.params.get("range") or "").endswith(tuple("0123456789"))
    ]
    assert len(ranged) > 10  # bytes=a-b requests, several per file


@pytest.mark.parametrize("mode", ["corrupt", "short", "error", "drop"])
def test_a_misbehaving_server_keeps_the_last_good_file(
    server: DemoServer,
    user_token: str,
    tmp_path: Path,
    mode: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    paths = WorkspacePaths(tmp_path)
    pull(paths, api(server, user_token))
    target = paths.data / "customers.parquet"
    good = target.read_bytes()
    target.unlink()  # force a download of this one file
    (paths.data / "products.parquet").write_bytes(b"stale")  # and of this one
    with FaultProxy(server.live.base_url) as proxy:
        proxy.mode = mode
        monkeypatch.setenv("AGNES_SERVER_URL", proxy.url)
        monkeypatch.setenv("AGNES_TOKEN", user_token)
        monkeypatch.setenv("AGNES_CONFIG_HOME", str(tmp_path / "cfg"))
        code = main(["pull", "--workspace", str(tmp_path), "--json"])
        out = json.loads(capsys.readouterr().out)
        assert code == exit_codes.FAILURE and proxy.downloads >= 2
        assert {f["file"] for f in out["failed"]} == {"customers.parquet", "products.parquet"}
        expected = {
            "corrupt": "download_corrupt",
            "short": "download_failed",
            "error": "internal_error",
            "drop": "unreachable",
        }
        assert {f["code"] for f in out["failed"]} == {expected[mode]}
        assert main(["pull", "--workspace", str(tmp_path), "--quiet"]) == exit_codes.FAILURE
        said = capsys.readouterr().err.splitlines()
        failed = [line for line in said if line.startswith("failed: ")]
        assert len(failed) == 2 and not any("parquet: customers" in line for line in failed)
        assert not any(line.count("customers.parquet") > 1 for line in failed), failed
        assert said[-1].startswith("hint: Run 'agnes pull' again")
        assert not target.exists() and (paths.data / "products.parquet").read_bytes() == b"stale"
        assert not any(
            p.suffix == ".parquet" and p.name.startswith(".") is False and p.stat().st_size == 0
            for p in paths.data.rglob("*")
        )
        if mode == "corrupt":  # a notebook's ws.pull() warns: a cell may show no summary
            from agnes_mcp.notebook import PullIncompleteWarning, connect

            with pytest.warns(PullIncompleteWarning, match="2 of the files were not fetched"):
                summary = connect(tmp_path).pull()
            assert len(summary.failed) == 2
        proxy.mode = "ok"
        assert main(["pull", "--workspace", str(tmp_path), "--quiet"]) == exit_codes.OK
    assert target.read_bytes() == good
    assert all(verified(paths, manifest(server, user_token)).values())


def test_a_failed_file_is_named_once() -> None:
    """``%agnes pull`` wrote "failed: a.parquet: a.parquet: the server sent ..." as the CLI
    did: a download's own message names its file already."""
    summary = PullSummary(
        failed=[
            {"file": "a.parquet", "code": "download_failed", "message": "a.parquet: cut short"},
            {"file": "b.parquet", "code": "unreachable", "message": "The connection failed."},
        ]
    )
    assert summary.failure_lines() == ["a.parquet: cut short", "b.parquet: The connection failed."]


def test_output_modes_and_dry_run(
    server: DemoServer,
    user_token: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGNES_SERVER_URL", server.live.base_url)
    monkeypatch.setenv("AGNES_TOKEN", user_token)
    monkeypatch.setenv("AGNES_CONFIG_HOME", str(tmp_path / "cfg"))
    folder = empty_workspace(tmp_path / "ws")
    assert main(["pull", "--workspace", str(folder), "--dry-run", "--json"]) == exit_codes.OK
    planned = json.loads(capsys.readouterr().out)
    assert (
        planned["dry_run"] is True
        and planned["downloaded"] > 0
        and not any((folder / ".agnes" / "data").iterdir())
    )
    assert main(["pull", "--workspace", str(folder)]) == exit_codes.OK
    out, err = capsys.readouterr()
    assert f"downloaded {planned['downloaded']} files" in out
    assert err.startswith("pull: 0/") and "of" in err  # plain progress lines when not a terminal
    assert main(["pull", "--workspace", str(folder), "--quiet"]) == exit_codes.OK
    assert capsys.readouterr() == ("", "")
    with workspace_lock(WorkspacePaths(folder), "pull.lock", PullBusy):
        assert main(["pull", "--workspace", str(folder), "--json"]) == exit_codes.FAILURE
        assert json.loads(capsys.readouterr().out)["error"]["code"] == "pull_running"
    monkeypatch.setenv("AGNES_TOKEN", "agnes_abcdefghij_" + "x" * 43)
    assert main(["pull", "--workspace", str(folder)]) == exit_codes.AUTH
    failed = WorkspacePaths(folder).pull_failure  # the failed pull's record, for answers
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() and p != failed}
    monkeypatch.setenv("AGNES_TOKEN", user_token)
    monkeypatch.setenv("AGNES_SERVER_URL", "http://127.0.0.1:9")  # nothing listens there
    assert main(["pull", "--workspace", str(folder)]) == exit_codes.UNREACHABLE
    assert before == {p: p.stat().st_mtime_ns for p in before}  # nothing else touched
    assert "127.0.0.1:9" in json.loads(failed.read_text())["why"]


class CtrlCAfterFirstFile(Quiet):
    """Ctrl-C as the pull's main thread sees it: KeyboardInterrupt, here raised where it
    notes the first file done, while other files are in flight or queued."""

    def file_done(self, relative: str, ok: bool) -> None:
        raise KeyboardInterrupt


def test_ctrl_c_stops_the_downloads_at_once(
    server: DemoServer, user_token: str, tmp_path: Path
) -> None:
    """Ctrl-C reached the main thread, but the download pools' exit waited for every file,
    started or queued, to arrive (a pull of large files went on for minutes, then said
    "interrupted"). The files not yet begun are dropped and those in flight stop at their
    next chunk; the next pull fetches the rest."""
    paths = WorkspacePaths(tmp_path)
    wanted = manifest(server, user_token)
    parts = sum(len(t.parts) for t in wanted.tables)
    assert parts > 4
    with pytest.raises(KeyboardInterrupt):
        pull(paths, api(server, user_token), jobs=1, reporter=CtrlCAfterFirstFile())
    landed = [p for p in paths.data.rglob("*.parquet") if not p.name.startswith(".")]
    assert len(landed) <= 2  # the one done, and at most the one begun meanwhile
    done = pull(paths, api(server, user_token))
    assert done.failed == [] and done.downloaded + done.unchanged == parts
    assert all(verified(paths, wanted).values())


class CtrlCAfterFirstPartOf(Quiet):
    """Ctrl-C once the first part of ``table`` (a partitioned one) has landed."""

    def __init__(self, table: str) -> None:
        super().__init__()
        self.table = table

    def file_done(self, relative: str, ok: bool) -> None:
        if relative.startswith(f"{self.table}/"):
            raise KeyboardInterrupt


def test_a_first_pull_stopped_half_way_leaves_no_table_answering_from_some_parts(
    server: DemoServer, user_token: str, tmp_path: Path
) -> None:
    """A first pull stopped after one part of a partitioned table left that part, and no
    manifest to say it was one of several: a query counted the part as the whole table.
    The pull keeps what it set out to fetch (manifest.pending.json) until it ends, so a
    query of the table is refused (table_unavailable: run agnes pull) until it is whole."""
    from agnes_mcp.query.workspace_query import WorkspaceQuery
    from agnes_mcp.rails.arrow_sources import TableUnavailable

    paths = WorkspacePaths(tmp_path)
    wanted = manifest(server, user_token)
    table = next(t for t in wanted.tables if len(t.parts) > 1)
    with pytest.raises(KeyboardInterrupt):
        pull(paths, api(server, user_token), jobs=1, reporter=CtrlCAfterFirstPartOf(table.id))
    landed = list((paths.data / table.id).rglob("*.parquet"))
    assert 0 < len(landed) < len(table.parts) and not paths.manifest.exists()
    query = WorkspaceQuery(paths)
    sql = f"SELECT count(*) AS n FROM {table.id}"
    with pytest.raises(TableUnavailable) as refused:
        query.run(sql, None)
    assert f"{len(table.parts) - len(landed)} of its {len(table.parts)} parts" in (
        refused.value.message
    )
    done = pull(paths, api(server, user_token))
    assert done.failed == [] and not paths.pending_manifest.exists()
    assert query.run(sql, None).table.to_pylist() == [{"n": table.rows}]


def cli_env(server: DemoServer, token: str, tmp_path: Path) -> dict[str, str]:
    """The environment of an `agnes` run in a subprocess: this server and token, a config
    folder of its own, none of the caller's AGNES_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGNES_")}
    env.update(
        AGNES_TOKEN=token,
        AGNES_CONFIG_HOME=str(tmp_path / "cfg"),
        AGNES_SERVER_URL=server.live.base_url,
        PYTHONPATH=str(REPO),
    )
    return env


def test_a_disk_refusing_writes_is_a_plain_error_and_loses_nothing(
    server: DemoServer, user_token: str, tmp_path: Path
) -> None:
    """A pull into a workspace whose disk refuses writes (full, read-only, a quota; here a
    real file-size limit, RLIMIT_FSIZE, refusing with EFBIG) says so, naming the folder
    and the reason, instead of a traceback; the next pull with room completes."""
    folder = empty_workspace(tmp_path / "ws")
    env = cli_env(server, user_token, tmp_path)
    argv = ("pull", "--workspace", str(folder), "--json")
    refused = subprocess.run(
        limited_command(2_000, *argv), env=env, capture_output=True, text=True, check=False
    )
    assert refused.returncode == exit_codes.FAILURE, refused.stderr
    assert "Traceback" not in refused.stderr
    error = json.loads(refused.stdout)["error"]
    assert error["code"] == "workspace_unwritable", error
    assert "File too large" in error["message"] and str(folder) in error["message"]
    command = [sys.executable, "-m", "cli.main", *argv]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == exit_codes.OK, done.stderr
    assert json.loads(done.stdout)["failed"] == []
    wanted = manifest(server, user_token)
    assert verified(WorkspacePaths(folder), wanted) == {
        p.path: True for t in wanted.tables for p in t.parts
    }


def test_a_file_the_disk_refuses_says_what_fixes_it_not_only_to_pull_again(
    server: DemoServer,
    user_token: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A file the workspace's disk refused (a read-only folder, here one file's download
    refused with EROFS) was reported with 'Run agnes pull again' alone, which fixes
    nothing there. The failure carries its own hint (free space, or make .agnes/
    writable), printed first and in the CLI's words."""
    victim = manifest(server, user_token).tables[0].parts[0].path
    opened = Path.open

    def read_only_for_one(self: Path, mode: str = "r", *args: object, **kwargs: object):
        writing = "w" in mode or "a" in mode
        if writing and Path(victim).name in self.name:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return opened(self, mode, *args, **kwargs)  # type: ignore[arg-type]

    folder = empty_workspace(tmp_path / "ws")
    monkeypatch.setenv("AGNES_SERVER_URL", server.live.base_url)
    monkeypatch.setenv("AGNES_TOKEN", user_token)
    monkeypatch.setattr(Path, "open", read_only_for_one)
    assert main(["pull", "--workspace", str(folder), "--json"]) == exit_codes.FAILURE
    failed = json.loads(capsys.readouterr().out)["failed"]
    assert [f["code"] for f in failed] == ["workspace_unwritable"], failed
    assert "writable" in failed[0]["hint"]
    assert main(["pull", "--workspace", str(folder)]) == exit_codes.FAILURE
    said = capsys.readouterr().err.splitlines()
    assert said[-1].startswith("hint: Free space on its disk (`agnes disk-info`"), said
    assert said[-1].endswith("until then the previous copy of each stays."), said


# Where a killed pull stops (the stages of agnes_sync/pull/pause.py) and its range size:
# 0 for the default (every demo file comes whole), else small enough for ranges.
STAGES = {
    "partial-written": 0,
    "before-rename": 0,
    "between-files": 0,
    "before-state": 0,
    "range-written": -1,  # half the largest file: it comes in 2 or 3 ranges
}
RANGED_PULL = """
import json, os, sys
from pathlib import Path
from agnes_sync.pull.pull import pull
from agnes_sync.server_api import ServerApi
from agnes_sync.workspace.layout import WorkspacePaths
api = ServerApi(os.environ["AGNES_SERVER_URL"], os.environ["AGNES_TOKEN"])
done = pull(WorkspacePaths(Path(sys.argv[1])), api, jobs=1, range_bytes=int(sys.argv[2]))
print(json.dumps(done.as_dict()))
sys.exit(1 if done.failed else 0)
"""


def pull_command(folder: Path, range_bytes: int) -> list[str]:
    """``agnes pull --jobs 1 --json``, or the same pull with ranges of ``range_bytes`` (the
    CLI has no option for it), in a process of its own."""
    if range_bytes:
        return [sys.executable, "-c", RANGED_PULL, str(folder), str(range_bytes)]
    command = [sys.executable, "-m", "cli.main", "pull", "--workspace", str(folder)]
    return [*command, "--jobs", "1", "--json"]


def kill_at(stage: str, command: list[str], env: dict[str, str]) -> None:
    """Run ``command`` until it says it reached ``stage`` (the pull's test hook), then
    SIGKILL it there: no timer decides when."""
    process = subprocess.Popen(
        command,
        env={**env, "AGNES_TEST_PAUSE_AT": stage},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    said = []
    for line in process.stderr:  # ends if the process ends without pausing
        said.append(line)
        if line.strip() == f"agnes-test-paused {stage}":
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()
    assert said and said[-1].strip() == f"agnes-test-paused {stage}", "".join(said)


@pytest.fixture
def big_file_token(server: DemoServer, tmp_path: Path) -> Iterator[str]:
    """A user granted some demo tables and one of ~1 MB (a demo file comes in one read:
    this one comes in many, so a pull can be stopped with part of it written)."""
    services = server.live.services
    source = Path(services.settings.sources["files"].options["path"])
    big = source / "pull_big.parquet"
    duckdb.connect().execute(
        "COPY (SELECT md5(random()::VARCHAR) || md5(random()::VARCHAR) AS s FROM range(20000)) "
        f"TO '{big}'"
    )
    register(services, id="pull_big", description="big", source_type="files", source_table=big.name)
    try:
        assert services.sync.sync_many(["pull_big"], "test")[0].status == "ok"
        group = services.groups.add(f"big-{time.monotonic_ns()}", "")
        for table in ("customers", "products", "orders", "pull_big"):
            services.grants.add(group.id, ResourceType.TABLE, table, granted_by="test")
        yield token_for(services, add_user(services, groups=(group.id,)))
    finally:
        services.sync.unregister("pull_big")
        big.unlink()


@pytest.mark.slow
def test_sigkill_at_every_stage_never_exposes_a_bad_file(
    server: DemoServer, big_file_token: str, tmp_path: Path
) -> None:
    user_token = big_file_token
    wanted = manifest(server, user_token)
    by_hash = {p.hash[:16]: p for t in wanted.tables for p in t.parts}
    total = len(by_hash)
    largest = max(p.size for p in by_hash.values())
    env = cli_env(server, user_token, tmp_path)
    seen: dict[str, int] = {}
    for stage, range_bytes in STAGES.items():
        range_bytes = largest // 2 if range_bytes < 0 else range_bytes
        folder = empty_workspace(tmp_path / stage)
        paths = WorkspacePaths(folder)
        kill_at(stage, pull_command(folder, range_bytes), env)

        state = verified(paths, wanted)
        assert all(state.values()), f"{stage}: a bad file is visible"
        seen[stage] = len(state)
        hidden = [p for p in paths.data.rglob(".*") if p.is_file()]
        partials = {p: by_hash[p.name.split(".")[-2]] for p in hidden if p.suffix == ".partial"}
        if stage == "partial-written":  # some bytes of the first file, not all
            [(partial, part)] = partials.items()
            assert 0 < partial.stat().st_size < part.size
        if stage == "before-rename":  # whole and verified, not in place
            [(partial, part)] = partials.items()
            assert file_hash(partial) == part.hash and not (paths.data / part.path).exists()
        if stage == "range-written":  # one range written, and recorded beside it
            [(partial, part)] = partials.items()
            sidecar = partial.with_name(partial.name + ".ranges")
            assert part.size == largest and json.loads(sidecar.read_text()) == [0]
        if stage == "before-state":
            assert not (paths.dot / "pull-state.json").exists()
        if paths.db.exists():
            duckdb.connect(str(paths.db), read_only=True).close()

        done = subprocess.run(
            pull_command(folder, range_bytes), env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, (stage, done.stdout, done.stderr)
        summary = json.loads(done.stdout)
        assert summary["downloaded"] == total - seen[stage], (stage, summary)
        assert verified(paths, wanted) == {p.path: True for t in wanted.tables for p in t.parts}
        assert not [p for p in paths.data.rglob(".*") if p.is_file()]  # no partial left behind
        # nor the DuckDB file the killed pull had begun (its views made as files landed)
        assert not list(paths.db.parent.glob(f".{paths.db.name}*")), stage
        with duckdb.connect(str(paths.db), read_only=True) as con:
            named = {v for (v,) in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
        assert {t.id for t in wanted.tables} <= named, stage
    assert seen["before-rename"] == 0 and seen["between-files"] == 1  # one file at a time
    assert all(0 <= seen[s] < total for s in STAGES if s != "before-state")  # kills mid-pull
    assert seen["before-state"] == total
