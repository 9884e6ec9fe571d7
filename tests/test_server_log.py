"""The server's own log lines: written like uvicorn's, at the ``log_level`` set."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server_process import server_env


def serve_once(tmp_path: Path, level: str) -> str:
    """``agnes serve`` until it says it is serving, then SIGTERM; its stderr."""
    data = tmp_path / level
    data.mkdir(mode=0o755)
    data.chmod(0o755)  # tightened at start, with a warning
    env = server_env(tmp_path, AGNES_LOG_LEVEL=level)
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--data-dir", str(data), "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:  # ends when the process does
        if "Press Ctrl-C to stop." in line:
            break
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return err


@pytest.mark.parametrize("level", ["info", "error"])
def test_agnes_lines_follow_log_level_and_say_their_level(tmp_path: Path, level: str) -> None:
    """Only uvicorn's loggers were set up: Agnes's info lines ("Agnes stopped", a data
    dir relocated, a sync retried) were never shown, and its warnings were printed bare,
    without their level, even at log_level error."""
    err = serve_once(tmp_path, level)
    tightened = "the data dir " + str(tmp_path / level) + " was readable by other local users"
    if level == "info":
        assert "INFO:     Agnes stopped (SIGTERM)." in err, err
        assert f"WARNING:  {tightened}" in err, err
    else:
        assert "Agnes stopped" not in err and tightened not in err, err


def test_a_server_command_leaves_the_process_logging_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run in a process of its own (a test's), a server command that ends takes its log
    handler and level with it."""
    import logging

    from cli import exit_codes
    from cli.main import main

    logger = logging.getLogger("agnes")
    before = (logger.level, list(logger.handlers))
    code = main(["serve", "--host", "", "--data-dir", str(tmp_path / "data"), "--port", "0"])
    assert code == exit_codes.CONFIG, capsys.readouterr().err
    assert (logger.level, list(logger.handlers)) == before
