"""The warm servers of a runtime folder, as their status files list them, and stopping
them (SIGTERM) — for tests, benchmarks and anyone cleaning up by hand."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

SERVER_MODULE = b"cli.warm_query.server"


def running(runtime: Path) -> list[dict[str, Any]]:
    """Each live server's status: pid, root, requests served, idle_seconds, name."""
    found = []
    for path in sorted(runtime.glob("q-*.json")):
        try:
            status = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if is_server(int(status.get("pid", 0))):
            found.append({**status, "name": path.stem})
    return found


def is_server(pid: int) -> bool:
    """``pid`` is a live (not zombie) warm query server."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return SERVER_MODULE in cmdline and state != "Z"


def stop(runtime: Path, wait_seconds: float = 10.0) -> int:
    """SIGTERM every server listed in ``runtime``; waits (bounded) until each is gone.
    The number stopped."""
    pids = [int(s["pid"]) for s in running(runtime)]
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_seconds
    while any(is_server(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    return len(pids)
