"""The sandbox reading parquet natively from in-memory copies of the files: the walls hold
on both ways of reading (copies and Arrow datasets), the copies are shared, sealed,
released and bounded, and the answers are the same either way."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from agnes_mcp.rails import answer_stream, file_copies
from agnes_mcp.rails.arrow_sources import TableUnavailable
from agnes_mcp.rails.file_copies import FileCopies, InPlaceFiles
from agnes_mcp.rails.native_tables import NativeTables
from agnes_mcp.rails.refusals import QueryFailed, QueryRefused, ReadOnly
from agnes_mcp.rails.sandbox import Limits, Sandbox
from agnes_mcp.rails.sandbox_pool import ROW_GROUP_ROWS, SandboxPool
from agnes_mcp.rails.tables import CatalogTable
from tests.conftest import SIGNAL_WAIT, local_table

LIMITS = Limits(rows=1000, bytes=10_000_000, timeout_seconds=5)
# memfd_create is Linux's; elsewhere every table is read through Arrow (the "arrow" way,
# tested everywhere). On Linux these run, and the test below fails if copies are missing.
native_only = pytest.mark.skipif(sys.platform != "linux", reason="memfd_create is Linux-only")


@native_only
def test_copies_are_available_on_linux() -> None:
    assert file_copies.supported()


@pytest.fixture
def data(tmp_path: Path) -> dict[str, Path]:
    parts = [tmp_path / f"part-{i}.parquet" for i in range(3)]
    for i, part in enumerate(parts):
        duckdb.sql(
            f"COPY (SELECT range + {i * 100} AS id, ['a', 'b', 'c'][{i + 1}] AS s "
            f"FROM range(100)) TO '{part}'"
        )
    typed = tmp_path / "typed.parquet"
    duckdb.sql(
        "COPY (SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::UUID AS u, '{\"a\": 1}'::JSON AS j, "
        f"INTERVAL '3 months 5 days 01:02:03.5' AS i, 12.5::DECIMAL(9, 2) AS d) TO '{typed}'"
    )
    wide = tmp_path / "wide.parquet"
    duckdb.sql(f"COPY (SELECT 1000::BIGINT AS id, 'z' AS s, true AS extra) TO '{wide}'")
    secret = tmp_path / "secret.parquet"
    duckdb.sql(f"COPY (SELECT 'top secret' AS s) TO '{secret}'")
    return {f"part{i}": p for i, p in enumerate(parts)} | {
        "typed": typed,
        "wide": wide,
        "secret": secret,
        "dir": tmp_path,
    }


def _tables(data: dict[str, Path]) -> list[CatalogTable]:
    return [
        local_table("parts", data["part0"], data["part1"], data["part2"]),
        local_table("typed", data["typed"]),
        local_table("mixed", data["part0"], data["wide"]),
    ]


@pytest.fixture(params=["copies", "arrow", "converted"])
def way(request: pytest.FixtureRequest) -> str:
    # Without memfd_create (macOS, Windows) "copies" falls back to Arrow datasets: the
    # same answers and walls are asserted either way, never skipped. "converted": the
    # tables converted to DuckDB files (native_tables), as a server reads them.
    return str(request.param)


@pytest.fixture
def sandbox(data: dict[str, Path], way: str) -> Iterator[Sandbox]:
    copies = FileCopies() if way != "arrow" else None
    natives = NativeTables(1024**3) if way == "converted" else None
    if natives is not None:
        natives.want(_tables(data))
        assert natives.wait_idle(30)
    box = Sandbox(_tables(data), memory_limit="256MB", threads=2, copies=copies, natives=natives)
    assert box.converted == (3 if way == "converted" else 0)
    yield box
    box.close()
    if natives is not None:
        natives.close()


def _rows(box: Sandbox, sql: str) -> list[dict[str, object]]:
    return box.run(sql, LIMITS).table.to_pylist()


def test_each_way_reads_what_duckdb_reads(sandbox: Sandbox, data: dict[str, Path]) -> None:
    files = ", ".join(f"'{data[f'part{i}']}'" for i in range(3))
    assert _rows(sandbox, "SELECT s, count(*) AS n FROM parts GROUP BY 1 ORDER BY 1") == [
        {"s": "a", "n": 100},
        {"s": "b", "n": 100},
        {"s": "c", "n": 100},
    ]
    assert _rows(sandbox, "SELECT count(*) AS n FROM parts") == [{"n": 300}]
    native = duckdb.sql(f"SELECT * FROM read_parquet([{files}]) ORDER BY id").to_arrow_table()
    assert _rows(sandbox, "SELECT * FROM parts ORDER BY id") == native.to_pylist()
    types = "SELECT typeof(COLUMNS(*)) FROM {}"
    expected = duckdb.sql(types.format(f"'{data['typed']}'")).fetchall()
    assert [tuple(r.values()) for r in _rows(sandbox, types.format("typed"))] == expected
    both = f"read_parquet(['{data['part0']}', '{data['wide']}'], union_by_name = true)"
    by_name = duckdb.sql(f"SELECT * FROM {both} ORDER BY id").to_arrow_table().to_pylist()
    assert _rows(sandbox, "SELECT * FROM mixed ORDER BY id") == by_name


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_parquet('{secret}')",
        "SELECT * FROM read_parquet('{part0}')",
        "SELECT * FROM read_blob('{secret}')",
        "SELECT * FROM glob('{dir}/*')",
        "SELECT * FROM read_parquet('/proc/self/fd/*')",
        "SELECT * FROM read_csv('/etc/passwd')",
    ],
)
def test_each_way_opens_no_file_by_its_name(
    sandbox: Sandbox, data: dict[str, Path], sql: str
) -> None:
    with pytest.raises(QueryFailed, match="Permission Error"):
        sandbox.run(sql.format(**{k: str(v) for k, v in data.items()}), LIMITS)


def test_each_way_runs_nothing_but_a_select(sandbox: Sandbox, data: dict[str, Path]) -> None:
    for sql in (
        f"COPY (SELECT 1) TO '{data['dir']}/out.parquet'",
        "COPY (SELECT 1) TO '/proc/self/fd/3'",
        "SET allowed_paths = ['/']",
    ):
        with pytest.raises((ReadOnly, QueryFailed)):
            sandbox.run(sql, LIMITS)
    assert not (data["dir"] / "out.parquet").exists()


def test_no_text_a_query_can_read_holds_a_server_path(
    sandbox: Sandbox, data: dict[str, Path]
) -> None:
    """Views, settings and the engine's own errors: the data dir appears nowhere."""
    said = [
        _rows(sandbox, "SELECT sql FROM duckdb_views() WHERE NOT internal"),
        _rows(sandbox, "SELECT * FROM duckdb_settings()"),
        _rows(sandbox, "SELECT current_setting('allowed_paths') AS a"),
        _rows(sandbox, "SELECT * FROM duckdb_databases()"),
        _rows(sandbox, "SELECT * FROM duckdb_tables()"),
    ]
    for sql in ("SELECT id::DATE FROM parts", "SELECT nope FROM parts", "SELECT 1/0::INT"):
        try:
            sandbox.run(sql, LIMITS)
        except QueryRefused as refusal:
            said.append([{"message": refusal.message, "details": str(refusal.details)}])
    assert len(said) > 3  # at least one engine error was looked at ('nope' is no column)
    text = str(said)
    assert str(data["dir"]) not in text and "part-0" not in text


@native_only
def test_copies_are_sealed_shared_and_released(data: dict[str, Path]) -> None:
    copies = FileCopies()
    first = Sandbox(_tables(data), memory_limit="256MB", threads=1, copies=copies)
    files, size = copies.files, copies.bytes
    assert first.native == 3 and files == 5  # three parts, typed, wide (part0 shared)
    second = Sandbox(_tables(data)[:1], memory_limit="256MB", threads=1, copies=copies)
    assert (copies.files, copies.bytes) == (files, size)  # the same copies
    lease = copies.lease([str(data["part0"])])
    assert lease is not None
    with pytest.raises(OSError), Path(lease.paths[0]).open("r+b") as copy:
        copy.write(b"forged")  # sealed: not even this process can change a copy
    lease.release()
    first.close()
    assert copies.files == 3 and _rows(second, "SELECT count(*) AS n FROM parts") == [{"n": 300}]
    second.close()
    assert (copies.files, copies.bytes) == (0, 0)


@native_only
def test_a_replaced_file_is_copied_again(data: dict[str, Path], tmp_path: Path) -> None:
    copies = FileCopies()
    table = local_table("parts", data["part0"])
    before = Sandbox([table], memory_limit="256MB", threads=1, copies=copies)
    fresh = tmp_path / "fresh.parquet"
    duckdb.sql(f"COPY (SELECT 7 AS id, 'new' AS s) TO '{fresh}'")
    os.replace(fresh, data["part0"])  # as a sync publishes: a new file under the old name
    after = Sandbox([table], memory_limit="256MB", threads=1, copies=copies)
    assert _rows(before, "SELECT count(*) AS n FROM parts") == [{"n": 100}]
    assert _rows(after, "SELECT * FROM parts") == [{"id": 7, "s": "new"}]
    assert copies.files == 2
    before.close()
    after.close()
    assert copies.files == 0


@native_only
def test_past_the_budget_a_table_is_read_through_arrow(data: dict[str, Path]) -> None:
    small = FileCopies(max_bytes=data["typed"].stat().st_size)
    box = Sandbox(_tables(data), memory_limit="256MB", threads=1, copies=small)
    try:
        assert box.native == 1  # typed fits; the others are read through Arrow datasets
        assert _rows(box, "SELECT count(*) AS n FROM parts") == [{"n": 300}]
        assert _rows(box, "SELECT count(*) AS n FROM typed") == [{"n": 1}]
    finally:
        box.close()
    assert small.files == 0
    none = FileCopies(max_files=0)
    box = Sandbox(_tables(data), memory_limit="256MB", threads=1, copies=none)
    assert box.native == 0 and _rows(box, "SELECT count(*) AS n FROM mixed") == [{"n": 101}]
    box.close()


@native_only
def test_closing_waits_for_the_running_query(data: dict[str, Path]) -> None:
    copies = FileCopies()
    box = Sandbox(_tables(data), memory_limit="256MB", threads=1, copies=copies)
    started, go_on = threading.Event(), threading.Event()

    def hold(cursor: duckdb.DuckDBPyConnection) -> None:  # the query is running: wait
        started.set()
        go_on.wait(SIGNAL_WAIT)

    answers: list[int] = []

    def query() -> None:
        result = box.run("SELECT count(*) AS n FROM parts", LIMITS, prepare=hold)
        answers.append(int(result.table.to_pylist()[0]["n"]))

    runner = threading.Thread(target=query)
    runner.start()
    assert started.wait(SIGNAL_WAIT)
    box.close()  # while the query runs: nothing is released yet
    assert copies.files == 5
    go_on.set()
    runner.join()
    assert answers == [300] and copies.files == 0
    with pytest.raises(TableUnavailable):
        box.run("SELECT 1", LIMITS)


def test_the_pool_drops_sandboxes_of_an_older_catalog(data: dict[str, Path]) -> None:
    copies = FileCopies() if file_copies.supported() else None
    pool = SandboxPool(memory_limit="256MB", threads=1, copies=copies)
    tables = _tables(data)
    old = pool.get(tables, (1, 1))
    assert pool.get(tables, (1, 1)) is old
    other = pool.get(tables[:1], (1, 1))
    new = pool.get(tables, (2, 1))
    assert new is not old and pool.get(tables[:1], (2, 1)) is not other
    with pytest.raises(TableUnavailable):  # closed once it was no longer the catalog's
        old.run("SELECT 1", LIMITS)
    pool.clear()
    if copies is not None:
        assert copies.files == 0


def test_a_query_reading_only_one_row_group_tables_gets_a_single_threaded_twin(
    data: dict[str, Path],
) -> None:
    pool = SandboxPool(memory_limit="256MB", threads=2, copies=None)
    tables = [replace(t, rows=300) for t in _tables(data)]
    big = replace(tables[0], rows=ROW_GROUP_ROWS + 1)
    unknown = replace(tables[0], rows=None)

    def threads(box: Sandbox) -> object:
        return _rows(box, "SELECT current_setting('threads') AS t")[0]["t"]

    try:
        full = pool.get(tables, (1, 1))
        twin = pool.get(tables, (1, 1), reads=tables[:2])
        assert twin is not full and pool.get(tables, (1, 1), reads=tables[1:]) is twin
        assert (threads(full), threads(twin)) == (2, 1)
        assert pool.get(tables, (1, 1), reads=[]) is twin  # no table: SELECT 42, range()
        for reads in ([tables[1], big], [unknown]):  # one big or unknown table: all threads
            assert pool.get(tables, (1, 1), reads=reads) is full
        assert _rows(twin, "SELECT count(*) AS n FROM parts") == [{"n": 300}]
    finally:
        pool.clear()


def test_a_table_whose_file_is_gone_is_a_typed_refusal(tmp_path: Path, way: str) -> None:
    copies = FileCopies() if way != "arrow" else None
    gone = local_table("gone", tmp_path / "no.parquet")
    broken_file = tmp_path / "broken.parquet"
    broken_file.write_bytes(b"PAR1 this is not parquet PAR1")
    broken = local_table("broken", broken_file)
    # The sandbox serves its other tables; only a query of one of these is refused.
    box = Sandbox([gone, broken], memory_limit="256MB", threads=1, copies=copies)
    try:
        if copies is not None:
            assert copies.files == 0  # no copy held for a table without a view
        for table in (gone, broken):
            with pytest.raises(TableUnavailable) as refused:
                box.refuse_unreadable([table])
            said = refused.value
            assert said.status == 503 and str(tmp_path) not in said.message
            assert f"'{table.id}'" in said.message
    finally:
        box.close()


def test_a_workspace_reads_its_own_files_in_place(data: dict[str, Path]) -> None:
    box = Sandbox(_tables(data), memory_limit="256MB", threads=1, copies=InPlaceFiles())
    try:
        assert box.native == 3
        assert _rows(box, "SELECT count(*) AS n FROM parts") == [{"n": 300}]
        with pytest.raises(QueryFailed, match="Permission Error"):
            box.run(f"SELECT * FROM read_parquet('{data['secret']}')", LIMITS)
    finally:
        box.close()


def test_lossy_types_are_text_whichever_way_the_answer_is_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sql = (
        "SELECT 340282366920938463463374607431768211455::UHUGEINT AS big, "
        "'01:02:03+05:30'::TIMETZ AS t, 42 AS plain, 'POINT(1 2)'::GEOMETRY AS g, "
        "{'a': 1}::VARIANT AS v, [2::VARIANT] AS vs"
    )
    box = Sandbox([], memory_limit="256MB", threads=1)
    try:
        fast = box.run(sql, LIMITS).table
        monkeypatch.setattr(answer_stream, "_seam", None)  # a DuckDB without the entry
        slow = box.run(sql, LIMITS).table
    finally:
        box.close()
    assert (
        fast.to_pylist()
        == slow.to_pylist()
        == [
            {
                "big": "340282366920938463463374607431768211455",
                "t": "01:02:03+05:30",
                "plain": 42,
                "g": "POINT (1 2)",
                "v": "{'a': 1}",
                "vs": "[2]",
            }
        ]
    )
    assert fast.schema == slow.schema


@pytest.mark.parametrize(("budget", "way"), [(0, None), (2 * 1024**3, "shared"), (1024, "own")])
def test_the_copy_budget_setting_chooses_the_way_tables_are_read(
    tmp_path: Path, budget: int, way: str | None
) -> None:
    from agnes_mcp.rails.file_copies import SHARED
    from agnes_mcp.services import Services
    from tests.conftest import make_settings

    services = Services.open(make_settings(tmp_path / "data", query_file_copy_bytes=budget))
    try:
        copies = services.query.sandboxes._copies
        if way is None:
            assert copies is None  # 0: always Arrow datasets
        elif way == "shared":
            assert copies is SHARED
        else:
            assert isinstance(copies, FileCopies) and copies is not SHARED
            assert copies.max_bytes == budget
    finally:
        services.close()
