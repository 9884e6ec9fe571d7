"""The environment of an `agnes serve` (or `demo`) run as a subprocess by a test: none of
the test process's AGNES_* variables, a config home of its own, no scheduler, this
checkout importable."""

from __future__ import annotations

import os
from pathlib import Path

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
