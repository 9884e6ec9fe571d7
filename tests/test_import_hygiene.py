"""Layering: the core never loads the UI toolkit; the CLI parser loads no heavy library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
