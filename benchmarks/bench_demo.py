"""Demo data generation time (full scale with --full: 1M orders, 20M sessions).

The baseline is a bare DuckDB `COPY (SELECT * FROM range(N)) TO parquet` of as many rows
as the demo writes, in the same run: the floor for writing that many rows here."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import duckdb

from agnes_sync.demo.generator import generate
from benchmarks.harness import Result


def run(quick: bool = False, full: bool = False) -> list[Result]:
    scale = 1.0 if full else 0.05
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        data = generate(Path(tmp) / "demo", scale=scale)
        seconds = time.perf_counter() - started
        rows = (
            sum(f["rows"] for f in data.manifest["files"].values())
            + data.manifest["sizes"]["sessions"]
        )
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        started = time.perf_counter()
        con.execute(
            f"COPY (SELECT range AS i FROM range({rows})) TO '{tmp}/floor.parquet' (FORMAT parquet)"
        )
        floor = time.perf_counter() - started
    return [
        Result(
            f"demo generation at scale {scale} ({rows:,} rows)",
            seconds,
            "s",
            "bare DuckDB COPY of as many single-column rows",
            floor,
            "< 60 s at full scale on 2 cores",
        )
    ]
