"""A cut result says so in every output of the CLI (table, JSON, CSV), naming the limit that
cut it and how to get the rest; CSV keeps stdout pure data and exits with its own code."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli import exit_codes
from cli.main import main
from tests.cli_harness import run
from tests.conftest import DemoServer, empty_workspace
from tests.refused_port import refused_url

# 2,000 orders at the demo's test scale: the cross join has 4,000,000 rows.
BIG = "SELECT a.order_id AS a, b.order_id AS b FROM orders a CROSS JOIN orders b"


def test_csv_cut_by_the_row_cap_says_so_on_stderr_and_exits_truncated(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "query", BIG, "--limit", "2000000", "--format", "csv")
    lines = out.splitlines()
    assert len(lines) == 100_001 and lines[0] == "a,b"  # stdout stays pure data
    assert code == exit_codes.TRUNCATED == 6
    assert "truncated" in err and "100,000" in err and "max_result_rows" in err
    assert "raise --limit" not in err.lower()  # --limit was raised: the cap cut it


def test_csv_of_a_whole_result_exits_ok_with_nothing_said(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "query", "SELECT count(*) AS n FROM orders", "--format", "csv")
    assert code == exit_codes.OK and out.splitlines()[0] == "n"
    assert "truncated" not in err


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (["--limit", "10"], [r"first 10( of 4,000,000)? rows", "--limit 10", "Raise --limit"]),
        ([], [r"first 1,000( of 4,000,000)? rows", r"no --limit was given", "default of 1,000"]),
    ],
)
def test_table_mode_names_the_limit_after_the_table(
    workspace: Path, capsys: pytest.CaptureFixture[str], limit: list[str], expected: list[str]
) -> None:
    code, out, err = run(capsys, "query", BIG, *limit)
    assert code == exit_codes.OK
    last = out.rstrip("\n").splitlines()[-1]
    assert last.startswith("truncated: "), last
    for pattern in expected:
        assert re.search(pattern, last), (pattern, last)
    assert "1,000 rows" in err or "10 rows" in err  # the summary line on stderr


def test_json_carries_every_truncation_field(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "query", BIG, "--limit", "2000000", "--json")
    assert code == exit_codes.OK
    answer = json.loads(out)
    assert answer["truncated"] is True and answer["reason"] == "rows"
    assert answer["row_count"] == len(answer["rows"]) == 100_000
    assert answer["row_limit"] == 100_000 and answer["row_limit_source"] == "cap"
    assert "max_result_rows" in answer["truncation"]["how_to_get_more"]
    assert answer["notes"] == [] and "total_rows" in answer


@pytest.fixture
def low_server_cap(demo_server: DemoServer) -> Iterator[None]:
    admin = ["--server-url", demo_server.live.base_url, "--token", demo_server.admin_token]
    assert main(["admin", "server-config", *admin, "--set", "max_result_rows=20", "--json"]) == 0
    try:
        yield
    finally:
        assert main(["admin", "server-config", *admin, "--reset", "max_result_rows", "--json"]) == 0


def test_remote_results_cut_by_the_servers_cap_say_so(
    workspace: Path, low_server_cap: None, capsys: pytest.CaptureFixture[str]
) -> None:
    sql = "SELECT session_id FROM web_sessions"
    code, out, err = run(capsys, "query", sql, "--remote", "--limit", "50", "--format", "csv")
    assert code == exit_codes.TRUNCATED and len(out.splitlines()) == 21
    assert re.search(r"first 20( of [\d,]+)? rows", err) and "max_result_rows" in err
    code, out, _ = run(capsys, "query", sql, "--remote", "--limit", "50")
    last = out.rstrip("\n").splitlines()[-1]
    assert re.match(r"truncated: first 20( of [\d,]+)? rows", last) and "max_result_rows" in last
    assert "Raise --limit" not in last


def test_metrics_query_csv_cut_says_so(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["metrics", "query", "revenue/total_revenue", "--grain", "day", "--limit", "3"]
    code, out, err = run(capsys, *argv, "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert code == exit_codes.TRUNCATED and len(rows) == 4  # header + 3
    assert re.search(r"first 3( of [\d,]+)? rows", err) and "--limit 3" in err
    assert not out.startswith("--")  # the SQL goes to stderr in CSV mode, not into the data
    code, out, _ = run(capsys, *argv, "--json")
    answer = json.loads(out)
    assert answer["truncated"] is True and answer["row_limit_source"] == "requested"


def test_describe_says_when_a_preview_is_cut(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "describe", "orders", "-n", "3")
    assert code == exit_codes.OK and "truncated" not in out  # 3 rows asked, 3 shown
    assert "3 rows" in err


def test_an_offline_catalog_says_it_is_not_the_whole_catalog(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with refused_url() as url:
        monkeypatch.setenv("AGNES_SERVER_URL", url)
        code, out, _ = run(capsys, "catalog")
        assert code == exit_codes.OK and "orders" in out
        assert "The server cannot be reached: this is the catalog as of the last contact" in out
        code, out, _ = run(capsys, "catalog", "--json")
        assert "cannot be reached" in json.loads(out)["notes"][0]


def test_a_folder_that_never_reached_the_server_is_told_so_not_shown_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No catalog was ever kept and no table is here: an empty listing would read as
    "there are no tables"; the answer is that the server cannot be reached."""
    monkeypatch.setenv("AGNES_TOKEN", "agnes_x_y")
    folder = empty_workspace(tmp_path / "ws")
    with refused_url() as url:
        monkeypatch.setenv("AGNES_SERVER_URL", url)
        for command in (("catalog",), ("metrics", "list")):
            code, out, err = run(capsys, *command, "--workspace", str(folder))
            assert code == exit_codes.UNREACHABLE, (command, out, err)
            assert "Cannot reach" in err or "failed" in err, err
        assert "(none)" not in out
