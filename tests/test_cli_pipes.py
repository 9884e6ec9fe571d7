"""Output piped into a reader that stops early (``| head``): the command ends quietly, as
Unix tools do, with no traceback, whether the reader left mid-stream or before it began."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli import exit_codes
from tests.conftest import DemoServer, pull_into_workspace

REPO = Path(__file__).resolve().parents[1]
BIG = "SELECT a.order_id AS a, b.order_id AS b FROM orders a CROSS JOIN orders b"


@pytest.fixture
def workspace(demo_server: DemoServer, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    folder = pull_into_workspace(
        demo_server.live.base_url, demo_server.analyst_token, tmp_path / "ws"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGNES_")}
    env.update(
        AGNES_SERVER_URL=demo_server.live.base_url,
        AGNES_TOKEN=demo_server.analyst_token,
        AGNES_CONFIG_HOME=str(tmp_path / "config"),
        AGNES_WARM_QUERY="0",  # each run in process, as the pipe tests mean
        PYTHONPATH=str(REPO),
    )
    return folder, env


def piped(
    workspace: tuple[Path, dict[str, str]], command: list[str], reader: str
) -> tuple[str, str, int]:
    """``agnes <command> | <reader>`` in bash: (the reader's stdout, agnes's stderr, agnes's
    exit code)."""
    folder, env = workspace
    agnes = " ".join(f"'{part}'" for part in [sys.executable, "-m", "cli.main", *command])
    script = f'{agnes} 2>agnes.err | {reader}; echo "$' + '{PIPESTATUS[0]}" > agnes.code'
    result = subprocess.run(
        ["bash", "-c", script], cwd=folder, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    err = (folder / "agnes.err").read_text()
    return result.stdout, err, int((folder / "agnes.code").read_text())


def test_csv_into_head_ends_quietly(workspace: tuple[Path, dict[str, str]]) -> None:
    out, err, code = piped(
        workspace, ["query", BIG, "--limit", "100000", "--format", "csv"], "head -2"
    )
    assert out.splitlines()[0] == "a,b" and len(out.splitlines()) == 2
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err
    assert code == exit_codes.BROKEN_PIPE == 141


@pytest.mark.parametrize("command", [["catalog"], ["query", BIG, "--limit", "5000"]])
def test_tables_into_head_end_quietly(
    workspace: tuple[Path, dict[str, str]], command: list[str]
) -> None:
    out, err, code = piped(workspace, command, "head -3")
    assert len(out.splitlines()) == 3
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err
    # All of a small output can fit in the pipe before head leaves.
    assert code in (exit_codes.OK, exit_codes.BROKEN_PIPE)


@pytest.mark.parametrize("command", [["catalog"], ["catalog", "--json"], ["whoami"]])
def test_a_reader_gone_before_the_output_starts(
    workspace: tuple[Path, dict[str, str]], command: list[str]
) -> None:
    folder, env = workspace
    read, write = os.pipe()
    os.close(read)  # nobody will ever read: the first write fails
    try:
        result = subprocess.run(
            [sys.executable, "-m", "cli.main", *command],
            cwd=folder,
            env=env,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)
    assert result.stderr == "" and result.returncode == exit_codes.BROKEN_PIPE


@pytest.mark.parametrize("remote", [False, True])
def test_sql_piped_in_latin1_is_refused_not_a_traceback(
    workspace: tuple[Path, dict[str, str]], remote: bool
) -> None:
    """`agnes query -` fed a Latin-1 file: the byte é reached DuckDB (InvalidInputException),
    the workspace's log (UnicodeEncodeError) and, with --remote, the request to the
    server (UnicodeEncodeError), each a traceback. It is refused, naming the byte."""
    folder, env = workspace
    command = [sys.executable, "-m", "cli.main", "query", *(["--remote"] if remote else []), "-"]
    result = subprocess.run(
        command,
        cwd=folder,
        env=env,
        input="SELECT 1 -- café\n".encode("latin-1"),
        capture_output=True,
        timeout=120,
    )
    err = result.stderr.decode()
    assert result.returncode == exit_codes.FAILURE and "Traceback" not in err, err
    assert "not text at" in err and "(the byte 0xE9)" in err and "UTF-8" in err
