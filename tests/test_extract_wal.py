"""The extract DB stays cheap to open: a publish attaches it to one in-memory DuckDB
(whose commit checkpoints into the file) and detaches it, never leaving it attached, even
when it fails; other writes through ``ExtractWriter.connect`` checkpoint once the WAL
passes ``WAL_BYTES`` (every open, the writer's and each reader's ATTACH, replays the
whole WAL)."""

from __future__ import annotations

import itertools
from pathlib import Path

import duckdb
import pytest

from agnes_sync import attach_host
from agnes_sync.contract import WAL_BYTES, ExtractWriter
from agnes_sync.extract_reader import read_extract


def _publish(writer: ExtractWriter, table: str, n: int) -> None:
    staged = writer.staging_file(table)
    duckdb.sql(f"COPY (SELECT {n} AS n) TO '{staged}' (FORMAT parquet)")
    writer.publish_file(table, staged, description=f"run {n}")


def _attached_now() -> list[str]:
    rows = attach_host.WRITER.cursor().execute("SELECT database_name FROM duckdb_databases()")
    return [r[0] for r in rows.fetchall() if r[0].startswith("attached_")]


def _wal(writer: ExtractWriter) -> int:
    wal = writer.paths.db.with_name(writer.paths.db.name + ".wal")
    return wal.stat().st_size if wal.exists() else 0


def test_publishes_leave_the_extract_checkpointed_and_detached(tmp_path: Path) -> None:
    writer = ExtractWriter(tmp_path / "extracts", "src")
    for n in range(30):
        _publish(writer, f"t{n % 3}", n)
        assert _wal(writer) == 0 and _attached_now() == []
    extract = read_extract(writer.paths, strict=True)
    assert {t: extract.tables[t].description for t in extract.tables} == {
        f"t{k}": f"run {27 + k}" for k in range(3)
    }


def test_a_failed_publish_changes_nothing_and_detaches(tmp_path: Path) -> None:
    writer = ExtractWriter(tmp_path / "extracts", "src")
    _publish(writer, "orders", 1)
    with pytest.raises(duckdb.Error):
        writer._record("orders", "broken", "local", "SELECT * FROM nowhere", [], replace_files=True)
    assert _attached_now() == []
    assert read_extract(writer.paths, strict=True).tables["orders"].description == "run 1"
    _publish(writer, "orders", 2)
    assert read_extract(writer.paths, strict=True).tables["orders"].description == "run 2"


def test_writes_through_connect_keep_the_wal_short(tmp_path: Path) -> None:
    writer = ExtractWriter(tmp_path / "extracts", "src")
    padding = "x" * 1_500  # each write adds ~2 KB to the WAL: a few cycles in ~120 opens
    sizes = []
    for n in range(120):
        with writer.connect() as con:
            con.execute(
                "INSERT OR REPLACE INTO _meta VALUES (?, ?, 0, 0, now(), 'local')",
                [f"t{n % 7}", f"run {n} {padding}"],
            )
        sizes.append(_wal(writer))
    assert max(sizes) > WAL_BYTES // 2  # it grows between checkpoints...
    assert max(sizes) < 2 * WAL_BYTES  # ...and is cut back once past the limit
    assert sum(1 for a, b in itertools.pairwise(sizes) if b < a) >= 2  # cut twice+
    with writer.connect() as con:
        assert con.execute("SELECT description FROM _meta WHERE table_name = 't0'").fetchone() == (
            f"run 119 {padding}",
        )
