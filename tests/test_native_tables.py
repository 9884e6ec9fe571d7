"""Tables converted to DuckDB files in the background (native_tables): converted again
when a sync replaces a file, bounded by a budget, refused when unreadable, private and
nameless on disk, removed on close, and picked up by the pool once ready. The walls and
answers of a sandbox reading them are asserted with the other ways in
test_sandbox_native.py."""

from __future__ import annotations

import os
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import duckdb.func
import pyarrow as pa
import pytest

from agnes_mcp.rails import native_tables
from agnes_mcp.rails.arrow_sources import TableUnavailable
from agnes_mcp.rails.file_copies import FileCopies
from agnes_mcp.rails.native_tables import NativeTables
from agnes_mcp.rails.sandbox import Limits, Sandbox
from agnes_mcp.rails.sandbox_pool import SandboxPool
from agnes_mcp.rails.tables import CatalogTable
from agnes_mcp.settings import AgnesSettings
from tests.conftest import local_table

LIMITS = Limits(rows=1000, bytes=10_000_000, timeout_seconds=5)


def _write(path: Path, select: str) -> Path:
    duckdb.sql(f"COPY ({select}) TO '{path}'")
    return path


@pytest.fixture
def natives() -> Iterator[NativeTables]:
    found = NativeTables(1024**3)
    yield found
    found.close()


def _rows(box: Sandbox, sql: str) -> list[dict[str, object]]:
    return box.run(sql, LIMITS).table.to_pylist()


def _converted(natives: NativeTables, *tables: CatalogTable) -> None:
    natives.want(list(tables))
    assert natives.wait_idle(30)


def test_a_replaced_file_is_converted_again(natives: NativeTables, tmp_path: Path) -> None:
    part = _write(tmp_path / "p.parquet", "SELECT range AS id FROM range(10)")
    table = local_table("t", part)
    _converted(natives, table)
    first, generation = natives.path(table), natives.generation
    before = Sandbox([table], memory_limit="256MB", threads=1, natives=natives)
    fresh = _write(tmp_path / "fresh.parquet", "SELECT 99 AS id")
    os.replace(fresh, part)  # as a sync publishes: a new file under the old name
    assert natives.path(table) is None  # not converted yet: read from parquet meanwhile
    assert natives.wait_idle(30) and natives.generation == generation + 1
    after = Sandbox([table], memory_limit="256MB", threads=1, natives=natives)
    try:
        assert (before.converted, after.converted) == (1, 1)
        assert natives.path(table) not in (None, first)
        assert _rows(before, "SELECT count(*) AS n FROM t") == [{"n": 10}]
        assert _rows(after, "SELECT * FROM t") == [{"id": 99}]
    finally:
        before.close()
        after.close()


def test_past_the_budget_a_table_is_read_from_parquet(tmp_path: Path) -> None:
    small = _write(tmp_path / "small.parquet", "SELECT 1 AS id")
    probe = NativeTables(1024**3)
    _converted(probe, local_table("small", small))
    room = probe.bytes  # what the small table takes converted
    probe.close()
    big = _write(
        tmp_path / "big.parquet", "SELECT range AS id, md5(range::VARCHAR) AS h FROM range(50000)"
    )
    assert big.stat().st_size > room
    natives = NativeTables(room)
    try:
        tables = [local_table("big", big), local_table("small", small)]
        _converted(natives, *tables)
        assert natives.path(tables[0]) is None and natives.path(tables[1]) is not None
        assert natives.bytes <= natives.max_bytes
        box = Sandbox(tables, memory_limit="256MB", threads=1, copies=FileCopies(), natives=natives)
        try:
            assert (box.converted, box.native) == (1, 1)  # small converted, big from parquet
            assert _rows(box, "SELECT count(*) AS n FROM big") == [{"n": 50000}]
        finally:
            box.close()
    finally:
        natives.close()


def test_the_oldest_conversion_leaves_first_when_the_budget_is_full(tmp_path: Path) -> None:
    parts = [_write(tmp_path / f"{i}.parquet", f"SELECT {i} AS id") for i in range(3)]
    tables = [local_table(f"t{i}", p) for i, p in enumerate(parts)]
    probe = NativeTables(1024**3)
    _converted(probe, tables[0])
    one = probe.bytes
    probe.close()
    natives = NativeTables(2 * one)  # room for two
    try:
        for table in tables:
            _converted(natives, table)
        assert natives.files == 2 and natives.path(tables[0]) is None
        assert natives.path(tables[2]) is not None
    finally:
        natives.close()


def test_an_unreadable_table_is_not_converted_and_refused_as_before(
    natives: NativeTables, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 this is not parquet PAR1")
    table = local_table("broken", broken)
    _converted(natives, table)
    assert natives.path(table) is None and natives.files == 0
    natives.want([table])  # refused once, not tried again
    assert natives.wait_idle(30) and natives.files == 0
    box = Sandbox([table], memory_limit="256MB", threads=1, copies=FileCopies(), natives=natives)
    try:  # the sandbox serves the other tables; a query of this one is refused
        with pytest.raises(TableUnavailable) as refused:
            box.refuse_unreadable([table])
    finally:
        box.close()
    assert str(tmp_path) not in refused.value.message


def test_converted_files_are_private_nameless_and_removed_on_close(tmp_path: Path) -> None:
    part = _write(tmp_path / "orders-2024.parquet", "SELECT 1 AS id")
    table = local_table("orders", part)
    natives = NativeTables(1024**3)
    _converted(natives, table)
    path = natives.path(table)
    assert path is not None
    folder = Path(path).parent
    assert folder.parent == Path(tempfile.gettempdir()).resolve() or folder.parent == Path(
        tempfile.gettempdir()
    )
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert "orders" not in path and str(tmp_path) not in path
    box = Sandbox([table], memory_limit="256MB", threads=1, natives=natives)
    natives.close()
    assert not folder.exists()
    try:  # an attached file outlives its name
        assert _rows(box, "SELECT * FROM orders") == [{"id": 1}]
    finally:
        box.close()
    natives.want([table])  # closed: nothing more is converted
    assert natives.wait_idle(5) and natives.files == 0


def test_the_pool_reads_a_table_converted_after_its_sandbox_was_made(tmp_path: Path) -> None:
    part = _write(tmp_path / "p.parquet", "SELECT range AS id FROM range(100)")
    table = local_table("t", part)
    natives = NativeTables(1024**3)
    pool = SandboxPool(memory_limit="256MB", threads=1, copies=FileCopies(), natives=natives)
    try:
        first = pool.get([table], (1, 1))
        assert first.converted == 0  # the first query does not wait for the conversion
        assert pool.wait_converted(30)
        second = pool.get([table], (1, 1))
        assert second is not first and second.converted == 1
        assert pool.get([table], (1, 1)) is second
        assert _rows(second, "SELECT count(*) AS n FROM t") == [{"n": 100}]
        with pytest.raises(TableUnavailable):  # the parquet one was dropped
            first.run("SELECT 1", LIMITS)
    finally:
        pool.close()
    assert natives.files == 0


@pytest.mark.parametrize("budget", [0, 1024**2])
def test_the_budget_setting_turns_conversion_on_and_off(tmp_path: Path, budget: int) -> None:
    from agnes_mcp.services import Services
    from tests.conftest import make_settings

    services = Services.open(make_settings(tmp_path / "data", query_native_table_bytes=budget))
    try:
        natives = services.query.sandboxes._natives
        assert (natives is None) if budget == 0 else (natives is not None)
        assert natives is None or natives.max_bytes == budget
    finally:
        services.close()


def test_a_new_catalog_removes_conversions_no_table_reads(
    natives: NativeTables, tmp_path: Path
) -> None:
    a = local_table("a", _write(tmp_path / "a.parquet", "SELECT 1 AS id"))
    b = local_table("b", _write(tmp_path / "b.parquet", "SELECT 2 AS id"))
    natives.want([a, b], only=True)
    assert natives.wait_idle(30) and natives.files == 2
    gone = natives.path(b)
    assert gone is not None
    natives.want([a], only=True)  # b left the catalog
    assert natives.wait_idle(30)
    assert natives.files == 1 and natives.path(a) is not None and not Path(gone).exists()
    kept = natives.path(a)
    assert kept is not None and natives.bytes == Path(kept).stat().st_size  # b's bytes gone


def test_a_small_table_stays_parquet(tmp_path: Path) -> None:
    small = local_table("small", _write(tmp_path / "s.parquet", "SELECT 1 AS id"))
    natives = NativeTables(1024**3, min_bytes=1024**2)
    try:
        assert natives.path(small) is None
        natives.want([small])
        assert natives.wait_idle(30) and natives.files == 0 and natives.path(small) is None
        box = Sandbox(
            [small], memory_limit="256MB", threads=1, copies=FileCopies(), natives=natives
        )
        try:
            assert (box.converted, box.native) == (0, 1)
        finally:
            box.close()
    finally:
        natives.close()


def _block_size(path: str) -> int:
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{path}' AS f (READ_ONLY)")
        row = con.execute(
            "SELECT block_size FROM pragma_database_size() WHERE database_name = 'f'"
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    return int(row[0])


def test_a_small_table_is_converted_with_small_blocks(
    natives: NativeTables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By default every table is converted; one under SMALL_TABLE_BYTES of parquet is
    written with 16 KiB blocks (a file of a few rows is ~45 KB, not ~0.5 MB), bigger ones
    with DuckDB's default, and both read back the same rows in a sandbox."""
    assert AgnesSettings.model_fields["query_native_table_min_bytes"].default == 0
    small = local_table("small", _write(tmp_path / "s.parquet", "SELECT 1 AS id, 'a' AS v"))
    _converted(natives, small)
    path = natives.path(small)
    assert path is not None
    assert _block_size(path) == native_tables.SMALL_BLOCK_BYTES
    assert Path(path).stat().st_size < 200_000
    monkeypatch.setattr(native_tables, "SMALL_TABLE_BYTES", 1)  # every table counts as big
    big = local_table("big", _write(tmp_path / "b.parquet", "SELECT 2 AS id, 'b' AS v"))
    _converted(natives, big)
    big_path = natives.path(big)
    assert big_path is not None and _block_size(big_path) > native_tables.SMALL_BLOCK_BYTES
    box = Sandbox([small, big], memory_limit="256MB", threads=1, natives=natives)
    try:
        assert box.converted == 2
        assert _rows(box, "SELECT * FROM small UNION ALL SELECT * FROM big ORDER BY id") == [
            {"id": 1, "v": "a"},
            {"id": 2, "v": "b"},
        ]
    finally:
        box.close()


def test_small_tables_are_announced_once_per_job(
    natives: NativeTables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each announcement (a new generation) makes every pooled sandbox again: a job of
    small tables announces once when it ends, a big table as soon as it is converted."""
    small = [
        local_table(f"s{i}", _write(tmp_path / f"s{i}.parquet", f"SELECT {i} AS id"))
        for i in range(3)
    ]
    _converted(natives, *small)
    assert natives.files == 3 and natives.generation == 1
    monkeypatch.setattr(native_tables, "SMALL_TABLE_BYTES", 1)  # every table counts as big
    big = [
        local_table(f"b{i}", _write(tmp_path / f"b{i}.parquet", f"SELECT {i} AS id"))
        for i in range(2)
    ]
    _converted(natives, *big)
    assert natives.files == 5 and natives.generation == 3


def test_closing_interrupts_a_conversion_under_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A conversion that would run for hours is stopped by close(): its statement is
    interrupted, its half-written file removed, and the worker ends."""
    part = _write(tmp_path / "p.parquet", "SELECT range AS id FROM range(10)")
    table = local_table("t", part)
    running = threading.Event()

    def signalled(con: duckdb.DuckDBPyConnection, files: list[str]) -> bool:
        def mark(values: pa.Array) -> pa.Array:
            running.set()  # called from inside the running statement
            return pa.array([True] * len(values))

        con.create_function("running_mark", mark, ["bigint"], "boolean", type=duckdb.func.ARROW)
        return True

    endless = "SELECT count(*) AS n FROM range(1000000000000) AS r(i) WHERE running_mark(i)"
    monkeypatch.setattr(native_tables, "same_schema", signalled)
    monkeypatch.setattr(native_tables, "native_select", lambda files, by_name: endless)
    natives = NativeTables(1024**3)
    natives.want([table])
    assert running.wait(30)
    folder = next(Path(tempfile.gettempdir()).glob("agnes-tables-*/*.building")).parent
    natives.close()  # returns only once the worker has ended
    assert natives.files == 0 and natives.path(table) is None
    assert not folder.exists()
