"""The environment of an `agnes serve` (or `demo`) run as a subprocess by a test: none of
the test process's AGNES_* variables, a config home of its own, no scheduler, this
checkout importable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[1]


def server_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """This process's environment for a server subprocess, with ``settings`` (AGNES_*)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGNES_")}
    env.update(
        AGNES_CONFIG_HOME=str(tmp_path / "config-home"),
        AGNES_SCHEDULER_ENABLED="false",
        PYTHONPATH=str(REPO),
        **settings,
    )
    return env


def announced_url(stdout: IO[str], *, then: str | None = None) -> str | None:
    """The base URL a starting server prints on its ``API`` line (None if it ended first);
    with ``then``, read on to the line holding that text too."""
    base_url = None
    for line in stdout:  # ends when the process does
        if line.strip().startswith("API"):
            base_url = line.split()[1].removesuffix("/api")
            if then is None:
                break
        if then is not None and then in line:
            break
    return base_url


@contextmanager
def serving(
    data: Path, env: dict[str, str], *, stderr: int = subprocess.DEVNULL
) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """``agnes serve`` on ``data`` in a subprocess, once it says it is serving: the
    process, its base URL and the bootstrap token; killed after, if still running."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--data-dir", str(data), "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = announced_url(process.stdout, then="Press Ctrl-C to stop.")
        assert base_url, "the server did not start"
        token = (data / "state" / "bootstrap-token").read_text().strip()
        yield process, base_url, token
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def child_json(code: str, *args: str, timeout: float = 300) -> Any:
    """Run ``code`` (``python -c``, in the repository) in a process of its own, which must
    succeed; its last line of output, read as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
