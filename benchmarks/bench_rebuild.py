"""rebuild() with 1,000 registered tables (10 sources x 100 tables, the shape registering
through a few configured sources gives), and the pathological 1,000 sources x 1 table.

The extracts are written in bulk, as any connector may write the contract, so that the
setup does not dominate the run; only the orchestrator is timed."""

from __future__ import annotations

import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import duckdb

from agnes_sync.contract import CONTRACT_DDL, ExtractPaths
from agnes_sync.hashing import file_hash
from agnes_sync.orchestrator import Orchestrator
from benchmarks.harness import Result

SMALL = "SELECT range AS id, 'v' || range AS label FROM range({rows})"


def write_extracts(
    data_dir: Path, sources: int, tables: int, *, rows: int = 100, select: str = SMALL
) -> None:
    """``sources`` extracts of ``tables`` one-file tables each; ``select`` (with ``{rows}``
    and ``{seed}``) makes a table's rows."""
    sample = duckdb.connect()
    for s in range(sources):
        paths = ExtractPaths.of(data_dir / "extracts", f"src{s:04d}")
        paths.data.mkdir(parents=True)
        con = duckdb.connect(str(paths.db))
        con.execute(CONTRACT_DDL)
        con.begin()
        for t in range(tables):
            name = f"t{s:04d}_{t:03d}"
            target = paths.table_file(name)
            query = select.format(rows=rows, seed=s * 100_003 + t)
            sample.execute(f"COPY ({query}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)")
            size = target.stat().st_size
            con.execute(
                "INSERT INTO _files VALUES (?, ?, NULL, ?, ?, ?, NULL)",
                [name, f"data/{name}.parquet", rows, size, file_hash(target)],
            )
            con.execute(
                "INSERT INTO _meta VALUES (?, '', ?, ?, now(), 'local')", [name, rows, size]
            )
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{target}')")
        con.commit()
        con.close()
    sample.close()


def timed(action, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def run(quick: bool = False) -> list[Result]:
    rounds = 2 if quick else 3
    results = []
    for sources, tables, label in ((10, 100, "10 sources x 100"), (1000, 1, "1,000 sources x 1")):
        if quick and sources == 1000:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp)
            write_extracts(data, sources, tables)
            orchestrator = Orchestrator(data)
            full = timed(orchestrator.rebuild, rounds)
            one = timed(partial(orchestrator.rebuild_source, "src0003"), rounds)
            assert orchestrator.rebuild().tables == sources * tables
        results.append(
            Result(
                f"rebuild(), 1,000 tables ({label}), cold",
                full,
                "s",
                "rebuild_source() of one source, same DB",
                one,
                "<= 2 s" if sources == 10 else "report",
            )
        )
    return results
