"""CLI start-up: `agnes --help`, and a local `agnes query` in a workspace (parse, rails,
sandbox, print), against a bare Python start and against importing the libraries any
such query needs (duckdb, sqlglot, pyarrow, pydantic).

Three honest `agnes query` numbers: the warm one (the workspace's warm query server
answers: the usual case after the first query), the first call (no server yet: it runs
in process, as every call did before, and starts one) and a call with the warm path off
(`AGNES_WARM_QUERY=0`). The arms are interleaved, and every server started here lives in
a runtime folder of its own and is stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from agnes_sync.workspace.layout import WorkspacePaths
from benchmarks.harness import Result, compile_bytecode, median
from cli.warm_query import servers

RUNS = 30
LIBRARIES = "import duckdb, sqlglot, pyarrow, pydantic"
QUERY = ["query", "SELECT 42 AS answer", "--format", "csv"]
BOUND = 60.0  # seconds to wait for a server to start or stop


def _wall(argv: list[str], cwd: str | None = None, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, cwd=cwd, env=env
    )
    return time.perf_counter() - started


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + BOUND
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def run(quick: bool = False) -> list[Result]:
    compile_bytecode()
    agnes = str(Path(sys.executable).parent / "agnes")
    runs = 10 if quick else RUNS
    for _ in range(3):  # warm the page cache
        _wall([agnes, "--help"])
    python = median([_wall([sys.executable, "-c", "pass"]) for _ in range(runs)])
    help_time = median([_wall([agnes, "--help"]) for _ in range(runs)])
    runtime = Path(tempfile.mkdtemp(prefix="agnes-bench-", dir="/tmp"))  # a short socket path
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGNES_")}
    env["AGNES_SERVER_URL"] = "http://127.0.0.1:9"  # never reached: the query is local
    env["XDG_RUNTIME_DIR"] = str(runtime)  # this run's warm servers, and only them
    off = {**env, "AGNES_WARM_QUERY": "0"}
    samples: dict[str, list[float]] = {"libraries": [], "warm": [], "first": [], "off": []}
    try:
        with tempfile.TemporaryDirectory() as workspace:
            WorkspacePaths(Path(workspace)).ensure()  # as `agnes init --no-pull` leaves it
            query = [agnes, *QUERY]
            _wall(query, workspace, off)
            _wall(query, workspace, env)  # starts the warm server
            _wait_for(lambda: bool(servers.running(runtime / "agnes")))
            if not servers.running(runtime / "agnes"):
                raise RuntimeError("the warm query server did not start")
            warm_pid = int(servers.running(runtime / "agnes")[0]["pid"])
            _wall(query, workspace, env)
            for i in range(runs):
                samples["libraries"].append(_wall([sys.executable, "-c", LIBRARIES]))
                samples["warm"].append(_wall(query, workspace, env))
                samples["off"].append(_wall(query, workspace, off))
                if i % 3 == 0:  # a first call: a key no server has yet (then stop its server)
                    first = {**env, "AGNES_BENCH_FIRST_CALL": str(i)}
                    before = len(servers.running(runtime / "agnes"))
                    samples["first"].append(_wall(query, workspace, first))
                    _wait_for(partial(_more_than, runtime / "agnes", before))
                    _stop_others(runtime / "agnes", keep=warm_pid)
    finally:
        servers.stop(runtime / "agnes")
        shutil.rmtree(runtime, ignore_errors=True)
    libraries = median(samples["libraries"])
    cold_note = (
        f"first call (no server yet: runs in process and starts one) "
        f"{median(samples['first']) * 1000:.0f} ms; "
        f"with AGNES_WARM_QUERY=0 {median(samples['off']) * 1000:.0f} ms"
    )
    return [
        Result(
            "agnes --help (p50 wall)",
            help_time * 1000,
            "ms",
            "python -c pass",
            python * 1000,
            "< 70 ms (old system: 700 ms)",
        ),
        Result(
            "agnes query, local, in a workspace, warm server (p50 wall)",
            median(samples["warm"]) * 1000,
            "ms",
            f"python -c '{LIBRARIES}'",
            libraries * 1000,
            "< 300 ms to output",
            cold_note,
        ),
        Result(
            "agnes query, local, in a workspace, first call (p50 wall)",
            median(samples["first"]) * 1000,
            "ms",
            f"python -c '{LIBRARIES}'",
            libraries * 1000,
            "no target: a cold Python process cannot import the libraries in 300 ms",
            "runs in process (as with AGNES_WARM_QUERY=0) and starts the warm server",
        ),
    ]


def _stop_others(runtime: Path, keep: int) -> None:
    """Stop the servers the first-call arm started (keep the warm arm's)."""
    for status in servers.running(runtime):
        pid = int(status["pid"])
        if pid != keep:
            os.kill(pid, signal.SIGTERM)
            _wait_for(partial(_gone, pid))


def _more_than(runtime: Path, count: int) -> bool:
    return len(servers.running(runtime)) > count


def _gone(pid: int) -> bool:
    return not servers.is_server(pid)
