"""The environment of an `agnes serve` (or `demo`) run as a subprocess by a test: none of
the test process's AGNES_* variables, a config home of its own, no scheduler, this
checkout importable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
