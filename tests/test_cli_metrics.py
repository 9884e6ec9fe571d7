"""``agnes metrics list`` and ``agnes metrics show``: the metric definitions an analyst may
use, as the MCP tools metrics_list and metric_show give them, for people and as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli import exit_codes
from tests.cli_harness import run
from tests.conftest import DemoServer, empty_workspace


@pytest.fixture
def analyst(demo_server: DemoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AGNES_SERVER_URL", demo_server.live.base_url)
    monkeypatch.setenv("AGNES_TOKEN", demo_server.analyst_token)
    folder = empty_workspace(tmp_path / "ws")
    monkeypatch.chdir(folder)
    return folder


def test_metrics_list_for_people_and_as_json(
    analyst: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "metrics", "list", "--json")
    assert code == exit_codes.OK, err
    ids = {m["id"] for m in json.loads(out)["metrics"]}
    assert {"revenue/mrr", "revenue/total_revenue", "product/active_users"} <= ids
    assert "operations/support_resolution_time" not in ids  # over a table not granted
    code, out, _ = run(capsys, "metrics", "list")
    assert code == exit_codes.OK and "revenue/mrr" in out and "Monthly recurring revenue" in out
    assert f"{len(ids)} metrics" in out
    code, out, _ = run(capsys, "metrics", "list", "--search", "recurring", "--json")
    found = {m["id"] for m in json.loads(out)["metrics"]}
    assert "revenue/mrr" in found and "product/active_users" not in found


def test_metrics_show_for_people_and_as_json(
    analyst: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "metrics", "show", "revenue/mrr")
    assert code == exit_codes.OK, err
    assert "revenue/mrr: Monthly recurring revenue" in out and "expression: sum(mrr)" in out
    code, out, _ = run(capsys, "metrics", "show", "revenue/mrr", "--json")
    detail = json.loads(out)
    assert detail["id"] == "revenue/mrr" and detail["summary"]["tables"] == ["subscriptions"]
    assert detail["definition"]["expression"] == "sum(mrr)"
    code, out, err = run(capsys, "metrics", "show", "revenue/nope")
    assert code == exit_codes.FAILURE and "revenue/nope" in err and "hint:" in err
