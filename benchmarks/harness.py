"""Shared pieces: a real `agnes serve` in its own process, timing helpers, result rows."""

from __future__ import annotations

import gc
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agnes_mcp.services import Services

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("agnes_mcp", "agnes_sync", "cli", "connectors")


def compile_bytecode() -> None:
    """Write the .pyc files a normal install has (an environment with
    PYTHONDONTWRITEBYTECODE=1 never writes them, and CLI timings would include
    compiling every module)."""
    import compileall
    import sysconfig

    for root in (sysconfig.get_paths()["purelib"], *(str(REPO / p) for p in PACKAGES)):
        compileall.compile_dir(root, quiet=2)  # one process: a pool forked late can break


@dataclass
class Result:
    name: str
    value: float
    unit: str
    baseline_name: str
    baseline: float
    target: str
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("nan")

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "ratio": round(self.ratio, 3)}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def time_calls(call: Callable[[], object], n: int, warmup: int = 20) -> list[float]:
    """Seconds per call, after a warm-up."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


@contextmanager
def as_served(services: Services) -> Iterator[None]:
    """``services`` in process as ``agnes serve`` runs them once started: the tables
    converted to DuckDB's storage (``convert_tables``, waited for) and the heap built so
    far frozen (``serve.freeze_startup_heap``; build the MCP server first); the heap is
    unfrozen after the block."""
    services.query.convert_tables()
    if not services.query.sandboxes.wait_converted(120):
        raise RuntimeError("the tables were not converted within 120 s")
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@dataclass
class Server:
    base_url: str
    admin_token: str  # the demo analyst's token when the server runs the demo
    data_dir: Path


@contextmanager
def agnes_process(
    data_dir: Path,
    *command: str,
    entry: tuple[str, ...] = ("-m", "cli.main"),
    settings: Mapping[str, str] | None = None,
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`agnes serve` (or ``command``) on a free port in a subprocess, started with
    ``python <entry>`` and ``settings`` (``AGNES_*`` variables); yields the process and
    its base URL once the banner is printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGNES_")}
    env["AGNES_LOG_LEVEL"] = "warning"
    env.update(settings or {})
    args = list(command) or ["serve"]
    process = subprocess.Popen(
        [sys.executable, *entry, *args, "--data-dir", str(data_dir), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env=env,
    )
    try:
        assert process.stdout is not None
        url = None
        for line in process.stdout:
            match = re.search(r"MCP endpoint\s+(http://\S+)/mcp", line)
            if match:
                url = match[1]
            if "Press Ctrl-C" in line:
                break
        if url is None:
            raise RuntimeError("agnes serve did not start")
        yield process, url
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_ok(url: str, deadline: float) -> None:
    """Poll ``url`` until it answers 200 (a server's readiness has no signal to wait on)."""
    import httpx

    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=60).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.02)
    raise RuntimeError(f"{url} never answered 200")


@contextmanager
def agnes_server(data_dir: Path, *command: str) -> Iterator[Server]:
    """`agnes serve` (or ``command``, e.g. ``demo --scale 0.01``) on a free port, in a
    subprocess, with its bootstrap admin token."""
    with agnes_process(data_dir, *command) as (_, url):
        demo_tokens = data_dir / "state" / "demo-tokens.json"
        if demo_tokens.exists():
            import json

            token = json.loads(demo_tokens.read_text())["analyst"]
        else:
            token = (data_dir / "state" / "bootstrap-token").read_text().strip()
        wait_ok(f"{url}/healthz", time.monotonic() + 30)
        yield Server(url, token, data_dir)
