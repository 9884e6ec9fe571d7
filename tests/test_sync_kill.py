"""A sync killed at random points (SIGKILL) never leaves a partial parquet where readers look."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from agnes_sync.connector import SourceContext, TableRequest
from agnes_sync.contract import ExtractPaths, ExtractWriter
from agnes_sync.extract_reader import read_extract
from agnes_sync.orchestrator import Orchestrator
from connectors.files.connector import FilesConnector

ROWS = 300_000
REQUESTS = [
    TableRequest(id="big", source_table="big.csv"),
    TableRequest(
        id="parts",
        source_table="big.csv",
        sync_strategy="partitioned",
        partition_by="day",
        partition_granularity="day",
    ),
]

CHILD = """
import sys
from pathlib import Path
from agnes_sync.connector import SourceContext, TableRequest
from agnes_sync.contract import ExtractWriter
from connectors.files.connector import FilesConnector
from tests.test_sync_kill import REQUESTS
root, data = Path(sys.argv[1]), Path(sys.argv[2])
connector = FilesConnector(SourceContext("files", {"path": str(root)}, data))
writer = ExtractWriter(data / "extracts", "files")
print("ready", flush=True)
while True:
    for request in REQUESTS:
        writer.sweep(request.id)
        connector.extract(request, writer)
"""


def visible_parquet(data: Path) -> list[Path]:
    """Exactly what the two views read: data/big.parquet and data/parts/*/*.parquet."""
    folder = data / "extracts" / "files" / "data"
    single = [folder / "big.parquet"] if (folder / "big.parquet").exists() else []
    return single + sorted(folder.glob("parts/*/*.parquet"))


@pytest.mark.slow
def test_kill_at_random_points(tmp_path: Path) -> None:
    root, data = tmp_path / "files", tmp_path / "data"
    root.mkdir()
    duckdb.sql(
        f"COPY (SELECT range AS id, DATE '2026-01-01' + (range % 20)::INTEGER AS day, "
        f"md5(range::VARCHAR) AS payload FROM range({ROWS})) TO '{root / 'big.csv'}' (HEADER)"
    )
    rng = random.Random(7)
    kills = 0
    for _ in range(8):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(root), str(data)], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 1.2))
        child.send_signal(signal.SIGKILL)
        child.wait()
        kills += 1
        for path in visible_parquet(data):
            table = pq.read_table(path)  # whole and readable, or this raises
            assert table.num_rows > 0
        big = data / "extracts" / "files" / "data" / "big.parquet"
        if big.exists():
            assert pq.read_metadata(big).num_rows == ROWS
        parts = list((data / "extracts" / "files" / "data" / "parts").glob("*/*.parquet"))
        if len(parts) == 20:
            assert sum(pq.read_metadata(p).num_rows for p in parts) == ROWS
        if (data / "extracts" / "files" / "extract.duckdb").exists():
            assert read_extract(ExtractPaths.of(data / "extracts", "files")).problems == []
    assert kills == 8

    connector = FilesConnector(SourceContext("files", {"path": str(root)}, data))
    writer = ExtractWriter(data / "extracts", "files")
    for request in REQUESTS:
        writer.sweep(request.id)
        assert connector.extract(request, writer).rows == ROWS
    assert not [p for p in (data / "extracts" / "files" / "data").rglob(".*")]
    orchestrator = Orchestrator(data)
    assert orchestrator.rebuild().tables == 2
    con = orchestrator.connect()
    assert con.execute(
        "SELECT (SELECT count(*) FROM big), (SELECT count(*) FROM parts)"
    ).fetchone() == (ROWS, ROWS)
    con.close()


KILLED_AFTER_OPENING = """
import os, signal, sys
from pathlib import Path
import duckdb
from agnes_sync.contract import ExtractWriter

opened = duckdb.connect


def connect(path, *args, **kwargs):
    con = opened(path, *args, **kwargs)
    if Path(str(path)).name == "extract.duckdb":  # the extract DB itself, just opened
        os.kill(os.getpid(), signal.SIGKILL)
    return con


duckdb.connect = connect
with ExtractWriter(Path(sys.argv[1]), "files").connect():
    pass
"""


def test_a_writer_killed_as_it_opens_a_new_extract_db_leaves_it_whole(tmp_path: Path) -> None:
    """The extract DB was made in place: a writer killed before its contract tables were
    committed left a file every reader found without ``_meta``. It is made under a
    temporary name and renamed into place, tables and all."""
    extracts = tmp_path / "extracts"
    child = subprocess.run([sys.executable, "-c", KILLED_AFTER_OPENING, str(extracts)])
    assert child.returncode == -signal.SIGKILL
    paths = ExtractPaths.of(extracts, "files")
    assert paths.db.exists() and read_extract(paths).problems == []
