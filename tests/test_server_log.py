"""The server's own log lines: written like uvicorn's, at the ``log_level`` set."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.server_process import announced_url, server_env


def serve_once(tmp_path: Path, level: str, then: Callable[[str], None] | None = None) -> str:
    """``agnes serve`` until it says it is serving, ``then(its base URL)``, then SIGTERM;
    what it wrote after that (uvicorn's access lines go to stdout) and its stderr."""
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
    base_url = announced_url(process.stdout, then="Press Ctrl-C to stop.")
    if then is not None:
        assert base_url is not None
        then(base_url)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return out + err


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


def test_access_lines_never_carry_the_values_of_a_query(tmp_path: Path) -> None:
    """uvicorn's access log wrote each request's whole URL: the sign-in provider's one-time
    code and the session-bound state of every OIDC callback (or a token a client put in
    a query) landed in the server's log. The parameters are named, their values hidden."""
    secrets = ("code-0c9a8b7f6e5d", "state-1f2e3d4c5b6a", "agnes_abcdefghij_leaked")

    def ask(base_url: str) -> None:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            client.get(f"/auth/oidc/callback?code={secrets[0]}&state={secrets[1]}")
            client.get("/api/whoami", params={"token": secrets[2], "flag": ""})
            client.get("/healthz")

    err = serve_once(tmp_path, "info", ask)
    assert not [s for s in secrets if s in err], err
    assert '"GET /auth/oidc/callback?code=…&state=… HTTP/1.1" ' in err, err
    assert '"GET /api/whoami?token=…&flag=… HTTP/1.1" 401' in err, err
    assert '"GET /healthz HTTP/1.1" 200' in err, err
