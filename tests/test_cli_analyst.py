"""The analyst's CLI in a workspace: catalog, schema, describe, query (local and remote,
three formats), snapshots, metrics and disk-info, with their exit codes."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from cli import exit_codes
from cli.output import size
from tests.cli_harness import run
from tests.conftest import DemoServer, pull_into_workspace
from tests.refused_port import refused_url


@pytest.fixture
def workspace(demo_server: DemoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = pull_into_workspace(
        demo_server.live.base_url, demo_server.analyst_token, tmp_path / "ws"
    )
    monkeypatch.setenv("AGNES_SERVER_URL", demo_server.live.base_url)
    monkeypatch.setenv("AGNES_TOKEN", demo_server.analyst_token)
    monkeypatch.setenv("AGNES_CONFIG_HOME", str(tmp_path / "config"))
    (folder / "sub").mkdir()
    monkeypatch.chdir(folder / "sub")  # the workspace is found from a subfolder
    return folder


def test_catalog_schema_describe(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "catalog", "--json")
    assert code == exit_codes.OK
    tables = {t["id"]: t for t in json.loads(out)["tables"]}
    assert tables["orders"]["in_workspace"] is True and "support_tickets" not in tables
    code, out, _ = run(capsys, "catalog")
    assert "orders" in out and "metrics: agnes metrics list" in out
    code, out, _ = run(capsys, "catalog", "--metrics", "--json")
    assert "revenue/mrr" in {m["id"] for m in json.loads(out)["metrics"]}
    code, out, _ = run(capsys, "catalog", "--show", "revenue/mrr")
    assert code == exit_codes.OK and "expression: sum(mrr)" in out
    code, out, _ = run(capsys, "schema", "orders", "--json")
    assert "order_date" in [c["name"] for c in json.loads(out)["columns"]]
    code, out, _ = run(capsys, "describe", "web_sessions", "-n", "2", "--json")
    assert json.loads(out)["row_count"] == 2


def test_a_pulled_table_named_in_another_case_is_read_here_offline_too(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`describe ORDERS` and `schema Orders` missed the pulled `orders` (names were
    matched with their case, while SQL and the server match without) and went to the
    server: offline they failed 'Cannot reach', where `describe orders` answered."""
    with refused_url() as down:
        monkeypatch.setenv("AGNES_SERVER_URL", down)
        code, out, err = run(capsys, "describe", "ORDERS", "-n", "2", "--json")
        assert code == exit_codes.OK, err
        answer = json.loads(out)
        assert answer["row_count"] == 2 and answer["provenance"]["engine"] == "duckdb (workspace)"
        code, out, err = run(capsys, "schema", "Orders", "--json")
        assert code == exit_codes.OK, err
        assert json.loads(out)["table"] == "orders"


def test_an_export_to_a_file_that_cannot_be_written_names_that_file(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`agnes notebook export -o FILE` where FILE cannot be written (a read-only folder;
    here one under a file, which refuses whoever runs the test) was answered 'Writing to
    the workspace <ws> failed ... agnes disk-info, agnes snapshot drop': the wrong folder
    and the wrong remedy. The refusal names the file and says to check it."""
    assert run(capsys, "query", "SELECT 1 AS one")[0] == exit_codes.OK
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    target = blocker / "session.ipynb"
    code, _, err = run(capsys, "notebook", "export", "--since", "1h", "-o", str(target))
    assert code != exit_codes.OK and str(target) in err, err
    assert "workspace" not in err and "disk-info" not in err and ".tmp" not in err, err


def test_query_formats_and_remote(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql = "SELECT status, count(*) AS n FROM orders GROUP BY 1 ORDER BY 1"
    code, out, err = run(capsys, "query", sql)
    assert code == exit_codes.OK and "completed" in out and "duckdb (workspace)" in err
    # a local query scans no warehouse: its summary says nothing of bytes scanned
    assert "3 rows · duckdb (workspace) · " in err and "scanned" not in err
    code, _, err = run(capsys, "query", "SELECT 1 AS one")
    assert "1 row · " in err
    code, out, _ = run(capsys, "query", sql, "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["status", "n"] and [r[0] for r in rows[1:]] == [
        "cancelled",
        "completed",
        "refunded",
    ]
    code, out, _ = run(capsys, "query", sql, "--json")
    assert json.loads(out)["provenance"]["tables"][0]["id"] == "orders"
    code, out, err = run(
        capsys, "query", "SELECT count(DISTINCT device) FROM web_sessions", "--remote"
    )
    assert code == exit_codes.OK and " scanned · " in err and "duckdb_warehouse" in err
    assert re.search(r" · \d+\.\d [KMGT]iB of daily budget left", err), err  # human units
    many = "SELECT a.order_id FROM orders a CROSS JOIN orders b"
    code, out, err = run(capsys, "query", many, "--limit", "100000")
    assert "the row cap (max_result_rows) of 100,000 applied" in out + err  # not "raise it"
    code, out, err = run(capsys, "query", "SELECT * FROM web_sessions")
    assert code == exit_codes.FAILURE and "remote_table_needs_snapshot" not in err
    assert "is a remote table" in err and "hint:" in err
    # the ready command to run instead, as a CLI line (the hint names the MCP tools)
    ready = [x for x in err.splitlines() if x.startswith("next: ")]
    assert ready[0] == 'next: agnes query --remote "SELECT * FROM web_sessions"'
    assert len(ready) == 2 and ready[1].startswith("next: agnes snapshot create web_sessions")
    code, out, err = run(capsys, "query", "SELECT * FROM web_sessions", "--json")
    refusal = json.loads(out)["error"]
    assert refusal["code"] == "remote_table_needs_snapshot"
    options = refusal["next_step"]["options"]
    assert [o["cli"] for o in options] == [x.removeprefix("next: ") for x in ready]
    code, _, err = run(capsys, "query", "DROP TABLE orders")
    assert code == exit_codes.FAILURE and "SELECT" in err


def test_snapshots_and_disk_info(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv_estimate = [
        "snapshot",
        "create",
        "web_sessions",
        "--select",
        "session_id,device",
        "--where",
        "event_date >= DATE '2026-10-01'",
        "--estimate",
    ]
    code, out, _ = run(capsys, *argv_estimate, "--json")
    estimate = json.loads(out)
    assert code == exit_codes.OK and estimate["fits_cap"] is True
    code, out, _ = run(capsys, *argv_estimate)
    # sizes for people, as every other command prints them (was "262,144 bytes (cap
    # 5,368,709,120; budget left 53,682,371,923)")
    assert (
        code == exit_codes.OK
        and f"would scan {size(estimate['estimated_scan_bytes'])} (cap " in out
    )
    assert f"cap {size(estimate['limit_bytes'])}; " in out and "bytes" not in out.splitlines()[0]
    code, out, _ = run(
        capsys,
        "snapshot",
        "create",
        "web_sessions",
        "--select",
        "session_id,device",
        "--where",
        "event_date >= DATE '2026-10-01'",
        "--order-by",
        "session_id DESC",
        "--as",
        "recent",
    )
    assert code == exit_codes.OK and "Query it as recent" in out
    assert re.search(r"from web_sessions \(\d+(\.\d)? (B|KiB|MiB) scanned\)", out), out
    assert (workspace / ".agnes" / "snapshots" / "recent.parquet").exists()
    code, out, _ = run(capsys, "query", "SELECT count(*) FROM recent", "--format", "csv")
    assert int(out.splitlines()[1]) > 0
    code, out, _ = run(capsys, "snapshot", "list", "--json")
    assert [s["name"] for s in json.loads(out)["snapshots"]] == ["recent"]
    code, out, _ = run(capsys, "disk-info", "--json")
    info = json.loads(out)
    assert info["snapshots"] == 1 and info["snapshot_bytes"] > 0 and info["tables"] == 6
    code, out, _ = run(capsys, "snapshot", "drop", "recent")
    assert (
        code == exit_codes.OK
        and not (workspace / ".agnes" / "snapshots" / "recent.parquet").exists()
    )
    code, _, err = run(capsys, "snapshot", "create", "web_sessions", "--select", "device")
    assert code == exit_codes.USAGE and "--as NAME" in err


def test_a_snapshot_name_reads_as_sql_reads_it_in_every_command(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`SELECT * FROM S1` read the snapshot s1, but `snapshot drop S1` (and `create --as
    S1`, `refresh S1`) refused the name as invalid: one name, as SQL reads it, for all."""
    argv = ["snapshot", "create", "web_sessions", "--select", "session_id", "--limit", "5"]
    code, out, err = run(capsys, *argv, "--as", "Upper_S1", "--json")
    assert code == exit_codes.OK, err
    assert json.loads(out)["name"] == "upper_s1"
    assert (workspace / ".agnes" / "snapshots" / "upper_s1.parquet").exists()
    code, out, _ = run(capsys, *argv, "--as", "UPPER_s1", "--json")
    assert code == exit_codes.FAILURE and json.loads(out)["error"]["code"] == "snapshot_exists"
    code, out, _ = run(capsys, "snapshot", "list", "--json")
    assert [s["name"] for s in json.loads(out)["snapshots"]] == ["upper_s1"]
    code, out, _ = run(capsys, "query", "SELECT count(*) AS n FROM UPPER_S1", "--json")
    assert code == exit_codes.OK and json.loads(out)["rows"] == [[5]]
    code, out, err = run(capsys, "snapshot", "refresh", "Upper_S1", "--json")
    assert code == exit_codes.OK, err
    code, out, err = run(capsys, "snapshot", "drop", "UPPER_S1", "--json")
    assert code == exit_codes.OK and json.loads(out)["name"] == "upper_s1", err
    assert not (workspace / ".agnes" / "snapshots" / "upper_s1.parquet").exists()
    code, out, _ = run(capsys, "snapshot", "drop", "Not-A-Name", "--json")
    assert json.loads(out)["error"]["code"] == "snapshot_invalid"


def test_snapshot_refresh_and_prune(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = workspace / ".agnes" / "snapshots"
    for name, ttl in (("keep", "24"), ("stale", "24"), ("forever", None)):
        argv = ["snapshot", "create", "web_sessions", "--select", "session_id", "--as", name]
        argv += ["--where", "event_date >= DATE '2026-10-01'"]
        assert run(capsys, *argv, *(["--ttl", ttl] if ttl else []))[0] == exit_codes.OK
    before = json.loads((folder / "keep.json").read_text())
    inode = (folder / "keep.parquet").stat().st_ino
    code, out, _ = run(capsys, "snapshot", "refresh", "keep", "--json")
    after = json.loads((folder / "keep.json").read_text())
    assert code == exit_codes.OK and json.loads(out)["rows"] == before["rows"]
    assert after["created_at"] > before["created_at"] and after["ttl_seconds"] == 24 * 3600
    assert (folder / "keep.parquet").stat().st_ino != inode  # taken again, published anew
    # Age one snapshot past its TTL: prune drops it (file, metadata and view) and only it.
    stale = json.loads((folder / "stale.json").read_text())
    stale["created_at"] = "2020-01-01T00:00:00Z"
    (folder / "stale.json").write_text(json.dumps(stale))
    code, out, _ = run(capsys, "snapshot", "prune", "--expired", "--json")
    assert code == exit_codes.OK and [d["name"] for d in json.loads(out)["dropped"]] == ["stale"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "forever.json",
        "forever.parquet",
        "keep.json",
        "keep.parquet",
    ]
    code, _, err = run(capsys, "query", "SELECT count(*) FROM stale")
    assert code != exit_codes.OK and "stale" in err
    assert run(capsys, "query", "SELECT count(*) FROM keep")[0] == exit_codes.OK
    code, _, err = run(capsys, "snapshot", "prune")
    assert code == exit_codes.USAGE and "--expired" in err
    code, _, err = run(capsys, "snapshot", "refresh", "nope")
    assert code == exit_codes.FAILURE and "no snapshot 'nope'" in err


def test_metrics_query(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "metrics",
        "query",
        "revenue/total_revenue",
        "--grain",
        "year",
        "--dimension",
        "channel",
        "--filter",
        "channel=web,store",
        "--from",
        "2025-01-01",
        "--to",
        "2026-01-01",
        "--json",
    )
    assert code == exit_codes.OK
    answer = json.loads(out)
    assert {r[1] for r in answer["rows"]} == {"web", "store"}
    assert answer["provenance"]["engine"] == "duckdb (workspace)"  # local tables run here
    code, out, _ = run(capsys, "metrics", "query", "product/active_users", "--grain", "total")
    assert code == exit_codes.OK and "COUNT(DISTINCT customer_id)" in out
    code, _, err = run(capsys, "metrics", "query", "revenue/mrr", "--filter", "plan")
    assert code == exit_codes.USAGE and "DIMENSION=VALUE" in err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (("query", "SELECT 1", "--limit", "0"), "argument --limit: must be 1 or more, not 0"),
        (("query", "SELECT 1", "--limit", "-1"), "argument --limit: must be 1 or more, not -1"),
        (("describe", "orders", "-n", "1000"), "argument -n: must be from 1 to 100, not 1,000"),
        (
            ("metrics", "query", "revenue/total_revenue", "--from", "2026-13-01"),
            "argument --from: '2026-13-01' is not a day YYYY-MM-DD",
        ),
        (("metrics", "show", "total_revenue"), "There is no metric 'total_revenue'"),
    ],
)
def test_values_out_of_range_are_usage_errors_without_a_traceback(
    workspace: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], said: str
) -> None:
    try:
        code, _, err = run(capsys, *argv)
    except SystemExit as exit_:  # argparse's own refusal
        code, err = int(str(exit_.code)), capsys.readouterr().err
    assert said in err and "Traceback" not in err
    assert code == (exit_codes.FAILURE if argv[1] == "show" else exit_codes.USAGE)


@pytest.mark.parametrize(
    "argv",
    [
        ("schema", "support_tickets"),
        ("describe", "support_tickets"),
        ("query", "--remote", "SELECT * FROM support_tickets"),
        ("query", "SELECT * FROM support_tickets"),
    ],
)
def test_a_table_not_granted_exits_as_one_that_does_not_exist(
    workspace: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    """The catalog does not list a table the user may not read: every command answers it
    as one that does not exist (exit 1, the same words but the name), never "not granted"
    (which told that it exists)."""
    code, _, err = run(capsys, *argv)
    assert "support_tickets" in err and "Traceback" not in err
    ghost_code, _, ghost_err = run(
        capsys, *(a.replace("support_tickets", "support_tickles") for a in argv)
    )
    assert code == ghost_code == exit_codes.FAILURE, err
    assert err.replace("support_tickets", "<t>") == ghost_err.replace("support_tickles", "<t>")


def test_a_refused_token_says_what_to_check_here(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not the server's hint for raw HTTP clients ("Send 'Authorization: Bearer …'")."""
    code, _, err = run(capsys, "catalog", "--token", "agnes_0000000000_" + "0" * 43)
    assert code == exit_codes.AUTH
    assert "hint: The server refused the token: check the one this client uses" in err
    assert "Authorization: Bearer" not in err


def test_connect_without_anything_set_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agnes_mcp.notebook import AgnesRefusal, connect

    for name in ("AGNES_SERVER_URL", "AGNES_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AGNES_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AgnesRefusal) as raised:
        connect()
    assert raised.value.code == "no_token"
    assert raised.value.message == (
        "No Agnes server or token is set (and this folder is in no workspace)."
    )


def test_snapshot_list_for_people_says_each_snapshots_notes(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table has a row per snapshot and no room for its notes (that a table took its
    name, that its limit cut it): they followed in --json only."""
    import datetime as dt

    import pyarrow as pa

    from agnes_sync.snapshot_files import SnapshotFiles
    from agnes_sync.snapshot_meta import SnapshotMeta

    meta = SnapshotMeta(
        name="customers",  # a table pulled here has this name
        table_id="web_sessions",
        select=["device"],
        sql="SELECT device FROM web_sessions",
        created_at=dt.datetime.now(dt.UTC),
        rows=1,
        bytes=1,
    )
    SnapshotFiles(workspace / ".agnes" / "snapshots").save(pa.table({"device": ["a"]}), meta)
    code, out, _ = run(capsys, "snapshot", "list")
    assert code == exit_codes.OK
    assert "note (customers): A table named 'customers' was added after" in out
