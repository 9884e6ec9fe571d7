"""Layering: the core never loads the UI toolkit; the CLI parser loads no heavy library."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import LiveServer, empty_workspace

REPO = Path(__file__).resolve().parents[1]

LOADED = "import sys; print(sorted({{m.split('.')[0] for m in sys.modules}} & {names!r}))"


def loaded_after(code: str, names: set[str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code + "; " + LOADED.format(names=names)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return result.stdout.strip().splitlines()[-1]


def test_server_and_engine_import_without_panel_or_bokeh() -> None:
    code = "import agnes_mcp.api.app, agnes_mcp.serve, agnes_sync.demo.generator"
    assert loaded_after(code, {"panel", "bokeh"}) == "[]"


def test_every_core_module_imports_without_panel_or_bokeh() -> None:
    """Each module of agnes_mcp and agnes_sync on its own (the admin gate included)."""
    code = (
        "import importlib, pkgutil, agnes_mcp, agnes_sync\n"
        "for pkg in (agnes_mcp, agnes_sync):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code + LOADED.format(names={"panel", "bokeh"})],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


def cli_loaded(argv: list[str], names: set[str], server: LiveServer, tmp_path: Path) -> str:
    """Which of ``names`` a CLI command (run in a fresh workspace) loaded; it must exit 0."""
    code = (
        "import sys\n"
        "from cli.main import main\n"
        "try:\n"
        f"    code = main({argv!r})\n"
        "except SystemExit as exit:\n"
        "    code = exit.code\n"
        "print('exit', code)\n"
    )
    env = {
        **os.environ,
        "AGNES_SERVER_URL": server.base_url,
        "AGNES_TOKEN": server.admin_token,
        "AGNES_CONFIG_HOME": str(tmp_path / "config"),
    }
    result = subprocess.run(
        [sys.executable, "-c", code + LOADED.format(names=names)],
        capture_output=True,
        text=True,
        cwd=empty_workspace(tmp_path / "ws"),
        env={**env, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    lines = result.stdout.strip().splitlines()
    assert "exit 0" in lines, result.stdout[-2000:] + result.stderr[-2000:]
    return lines[-1]


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["pull"], ["query", "SELECT 1 AS one"]],
    ids=["help", "pull", "query"],
)
def test_cli_commands_never_import_panel(
    argv: list[str], live_server: LiveServer, tmp_path: Path
) -> None:
    assert cli_loaded(argv, {"panel", "bokeh"}, live_server, tmp_path) == "[]"


def test_a_pull_loads_no_library_it_does_not_use(live_server: LiveServer, tmp_path: Path) -> None:
    """A pull fetching every table and making its views needs duckdb (the views) and
    nothing heavier: each of these costs its import (pydantic ~40 ms, httpx ~50 ms) on
    the pull's two cores while the files arrive."""
    heavy = {"pydantic", "httpx", "pyarrow", "rich", "sqlglot", "fastapi", "agnes_mcp"}
    assert cli_loaded(["pull"], heavy, live_server, tmp_path) == "[]"
    assert (tmp_path / "ws" / ".agnes" / "agnes.duckdb").is_file()


def test_cli_parser_and_help_load_no_heavy_library() -> None:
    heavy = {
        "duckdb",
        "fastapi",
        "fastmcp",
        "mcp",
        "httpx",
        "pydantic",
        "rich",
        "uvicorn",
        "pyarrow",
        "agnes_mcp",
    }
    code = "import cli.main; cli.main.build_parser().format_help()"
    assert loaded_after(code, heavy) == "[]"


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
