"""Only ``agnes init`` makes a workspace: every other command that works in one finds the
nearest enclosing workspace, and where there is none (or ``--workspace`` names a folder
that is not one) it is refused with ``no_workspace`` and exit 3, creating nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli import exit_codes
from tests.cli_harness import run
from tests.conftest import DemoServer

NEEDS_A_WORKSPACE = [
    ("query", "SELECT count(*) FROM orders"),
    ("catalog",),
    ("schema", "orders"),
    ("describe", "orders"),
    ("disk-info",),
    ("snapshot", "list"),
    ("snapshot", "drop", "recent"),
    ("metrics", "list"),
    ("metrics", "query", "revenue/mrr"),
    ("pull",),
    ("push",),
    ("marketplace", "refresh"),
    ("notebook", "export", "--from", "workspace"),
]
NAMES_A_WORKSPACE = [
    *NEEDS_A_WORKSPACE,
    ("whoami",),
    ("marketplace", "info"),
    ("login",),
]


@pytest.fixture
def outside(demo_server: DemoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current folder with no workspace above it, and working credentials (so a
    command that went ahead would download, not fail for want of a token)."""
    folder = tmp_path / "plain" / "sub"
    folder.mkdir(parents=True)
    assert not any((f / ".agnes").exists() for f in (folder, *folder.parents))
    monkeypatch.setenv("AGNES_SERVER_URL", demo_server.live.base_url)
    monkeypatch.setenv("AGNES_TOKEN", demo_server.analyst_token)
    monkeypatch.setenv("AGNES_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude"))
    monkeypatch.chdir(folder)
    return folder


def refusal(out: str) -> dict[str, str]:
    error: dict[str, str] = json.loads(out)["error"]
    return error


@pytest.mark.parametrize("argv", NEEDS_A_WORKSPACE, ids=" ".join)
def test_no_workspace_here_or_above_is_refused_and_nothing_is_made(
    outside: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == exit_codes.CONFIG, out + err
    assert out == ""
    assert err.startswith(
        "error: No Agnes workspace here (or above): run `agnes init` in the folder you "
        "want to use.\n"
    )
    assert "hint: " in err
    code, out, _ = run(capsys, *argv, "--json")
    assert code == exit_codes.CONFIG and refusal(out)["code"] == "no_workspace"
    assert list(outside.iterdir()) == [] and not (outside.parent / ".agnes").exists()


@pytest.mark.parametrize("argv", NAMES_A_WORKSPACE, ids=" ".join)
@pytest.mark.parametrize("what", ["missing", "plain folder"])
def test_a_workspace_flag_that_names_no_workspace_is_refused(
    outside: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], what: str
) -> None:
    target = outside / "typo"
    if what == "plain folder":
        target.mkdir()
    code, out, _ = run(capsys, *argv, "--workspace", str(target), "--json")
    assert code == exit_codes.CONFIG, out
    error = refusal(out)
    assert error["code"] == "no_workspace"
    assert error["message"].startswith(f"{target} is not an Agnes workspace (")
    assert "run `agnes init` in the folder you want to use" in error["message"]
    assert target.exists() is (what == "plain folder")  # never made, nor filled
    assert not (target / ".agnes").exists() and not (outside / ".agnes").exists()


def test_init_makes_the_workspace_the_others_then_find(
    outside: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(capsys, "init", "--json")
    assert code == exit_codes.OK, out + err
    assert json.loads(out)["pull"]["downloaded"] > 0
    assert (outside / ".agnes" / "data").is_dir()
    sql = "SELECT count(*) AS n FROM orders"
    below, beside = outside / "deeper", outside.parent / "beside"
    for where, flags in ((below, ()), (beside, ("--workspace", str(outside)))):
        where.mkdir()
        monkeypatch.chdir(where)  # found from a folder below it, or named from elsewhere
        code, out, err = run(capsys, "query", sql, "--json", *flags)
        assert code == exit_codes.OK, out + err
        assert json.loads(out)["rows"][0][0] > 0
        assert not (where / ".agnes").exists()
    monkeypatch.chdir(below)
    code, out, err = run(capsys, "pull", "--json")
    assert code == exit_codes.OK and json.loads(out)["failed"] == [], out + err
