"""`agnes --help` wall time against a bare Python start (`python -c pass`)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from benchmarks.harness import Result, median

RUNS = 30


def _wall(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def run(quick: bool = False) -> list[Result]:
    agnes = str(Path(sys.executable).parent / "agnes")
    runs = 10 if quick else RUNS
    for _ in range(3):  # warm the page cache
        _wall([agnes, "--help"])
    python = median([_wall([sys.executable, "-c", "pass"]) for _ in range(runs)])
    help_time = median([_wall([agnes, "--help"]) for _ in range(runs)])
    return [
        Result(
            "agnes --help (p50 wall)",
            help_time * 1000,
            "ms",
            "python -c pass",
            python * 1000,
            "< 70 ms (old system: 700 ms)",
        )
    ]
