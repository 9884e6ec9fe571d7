"""CLI start-up: `agnes --help`, and a local `agnes query` in a workspace (parse, rails,
sandbox, print), against a bare Python start and against importing the libraries any
such query needs (duckdb, sqlglot, pyarrow, pydantic)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Result, compile_bytecode, median

RUNS = 30


LIBRARIES = "import duckdb, sqlglot, pyarrow, pydantic"


def _wall(argv: list[str], cwd: str | None = None, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, cwd=cwd, env=env
    )
    return time.perf_counter() - started


def run(quick: bool = False) -> list[Result]:
    compile_bytecode()
    agnes = str(Path(sys.executable).parent / "agnes")
    runs = 10 if quick else RUNS
    for _ in range(3):  # warm the page cache
        _wall([agnes, "--help"])
    python = median([_wall([sys.executable, "-c", "pass"]) for _ in range(runs)])
    help_time = median([_wall([agnes, "--help"]) for _ in range(runs)])
    libraries = median([_wall([sys.executable, "-c", LIBRARIES]) for _ in range(runs)])
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGNES_")}
    env["AGNES_SERVER_URL"] = "http://127.0.0.1:9"  # never reached: the query is local
    with tempfile.TemporaryDirectory() as workspace:
        query = [agnes, "query", "SELECT 42 AS answer", "--format", "csv"]
        _wall(query, workspace, env)
        local = median([_wall(query, workspace, env) for _ in range(runs)])
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
            "agnes query, local, in a workspace (p50 wall)",
            local * 1000,
            "ms",
            f"python -c '{LIBRARIES}'",
            libraries * 1000,
            "< 300 ms to output",
        ),
    ]
