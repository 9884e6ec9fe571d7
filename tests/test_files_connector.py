"""The files connector on real files: formats, reader options, and every sync strategy."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from agnes_sync.connector import SourceContext, TableRequest
from agnes_sync.contract import ExtractWriter
from agnes_sync.errors import (
    ConnectorCapabilityMissing,
    InvalidTableSpec,
    SourceDataError,
    SourceTableNotFound,
)
from connectors.files.connector import FilesConnector


@pytest.fixture
def connector(tmp_path: Path, source_root: Path) -> FilesConnector:
    return FilesConnector(SourceContext("files", {"path": str(source_root)}, tmp_path))


@pytest.fixture
def writer(tmp_path: Path) -> ExtractWriter:
    return ExtractWriter(tmp_path / "extracts", "files")


def rows_of(writer: ExtractWriter, table: str, order: str = "1") -> list[tuple]:
    con = duckdb.connect(str(writer.paths.db), read_only=True)
    try:
        return con.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
    finally:
        con.close()


def refused_both_ways(
    connector: FilesConnector, writer: ExtractWriter, request: TableRequest
) -> list[SourceDataError]:
    """The refusals of describing and of extracting ``request`` (both must refuse)."""
    refusals = []
    for attempt in (
        lambda: connector.describe_table(request),
        lambda: connector.extract(request, writer),
    ):
        with pytest.raises(SourceDataError) as caught:
            attempt()
        refusals.append(caught.value)
    return refusals


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "content", "options"),
    [
        ("people.csv", "id,name\n1,Ada\n2,Bo\n", {}),
        ("people.tsv", "id\tname\n1\tAda\n2\tBo\n", {}),
        ("people.txt", "id;name\n1;Ada\n2;Bo\n", {"delimiter": ";", "header": True}),
        ("people.ndjson", '{"id": 1, "name": "Ada"}\n{"id": 2, "name": "Bo"}\n', {}),
        ("people.json", '[{"id": 1, "name": "Ada"}, {"id": 2, "name": "Bo"}]', {}),
    ],
)
def test_text_formats(
    connector: FilesConnector,
    writer: ExtractWriter,
    source_root: Path,
    name: str,
    content: str,
    options: dict,
) -> None:
    write(source_root / name, content)
    request = TableRequest(id="people", source_table=name, options=options)
    columns = [c.name for c in connector.describe_table(request)]
    assert columns == ["id", "name"]
    published = connector.extract(request, writer)
    assert published.rows == 2
    assert rows_of(writer, "people") == [(1, "Ada"), (2, "Bo")]


def test_parquet_and_globs_and_buckets(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    (source_root / "2026").mkdir()
    for month in (1, 2, 3):
        duckdb.sql(
            f"COPY (SELECT {month} AS month, range AS n FROM range(5)) "
            f"TO '{source_root / '2026' / f'sales-{month:02d}.parquet'}' (FORMAT parquet)"
        )
    request = TableRequest(id="sales", bucket="2026", source_table="sales-*.parquet")
    assert connector.extract(request, writer).rows == 15
    assert rows_of(writer, "sales", "month, n")[0] == (1, 0)
    assert {t.source_table for t in connector.list_tables()} >= {"sales-01.parquet"}


def test_a_parquet_decimal_wider_than_duckdb_holds_is_kept_exact_as_text(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    """DuckDB reads a parquet decimal of more than 38 digits (Arrow decimal256) as DOUBLE:
    the sync published 12345678901234567890123456789.123456789 as 1.2345678901234568e+28
    (at first silently, then with a note). It is published as its exact text, and the
    sync's notes name each such column and say why its type changed; narrower ones stay
    exact decimals, also across a glob of files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    exact = Decimal("12345678901234567890123456789.123456789")
    pq.write_table(
        pa.table(
            {
                "wide": pa.array([exact], type=pa.decimal256(40, 9)),
                "narrow": pa.array([Decimal("123.45")], type=pa.decimal256(10, 2)),
            }
        ),
        source_root / "amounts.parquet",
    )
    request = TableRequest(id="amounts", source_table="amounts*.parquet")
    assert {c.name: c.type for c in connector.describe_table(request)} == {
        "wide": "VARCHAR",
        "narrow": "DECIMAL(10,2)",
    }
    published = connector.extract(request, writer)
    assert rows_of(writer, "amounts") == [(str(exact), Decimal("123.45"))]
    said = [n for n in published.notes if "DECIMAL(38)" in n]
    assert len(said) == 1 and "wide DECIMAL(40,9)" in said[0] and "narrow" not in said[0]
    assert "exact text" in said[0]
    pq.write_table(
        pa.table({"narrow": pa.array([Decimal("1.5")], type=pa.decimal256(10, 2))}),
        source_root / "amounts-2.parquet",
    )
    connector.extract(request, writer)
    assert rows_of(writer, "amounts", "wide NULLS LAST") == [
        (Decimal("123.45"), str(exact)),  # columns in the order the first file has them
        (Decimal("1.50"), None),
    ]
    for old in source_root.glob("amounts*.parquet"):
        old.unlink()
    pq.write_table(
        pa.table({"narrow": pa.array([Decimal("1.5")], type=pa.decimal128(38, 9))}),
        source_root / "amounts.parquet",
    )
    published = connector.extract(request, writer)
    assert not [n for n in published.notes if "DECIMAL(38)" in n]


def test_a_parquet_duration_is_published_as_an_interval_not_a_bare_number(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    """Parquet stores an Arrow duration as a plain integer of its unit (the unit only in
    Arrow's own schema): DuckDB read 90 seconds as the BIGINT 90000, milliseconds said
    nowhere. It is read through Arrow as the INTERVAL it is."""
    from datetime import timedelta

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table(
            {
                "id": [1, 2],
                "took": pa.array([timedelta(seconds=90), None], pa.duration("ms")),
                "n": pa.array([Decimal("1.5"), Decimal("2")], pa.decimal256(10, 2)),
            }
        ),
        source_root / "calls.parquet",
    )
    request = TableRequest(id="calls", source_table="calls.parquet")
    assert {c.name: c.type for c in connector.describe_table(request)}["took"] == "INTERVAL"
    connector.extract(request, writer)
    assert rows_of(writer, "calls") == [
        (1, timedelta(seconds=90), Decimal("1.50")),
        (2, None, Decimal("2.00")),
    ]


@pytest.mark.parametrize("glob", [False, True])
def test_csv_timestamps_keep_their_nanoseconds(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path, glob: bool
) -> None:
    """DuckDB's sniffer types '2023-11-14 22:13:20.123456789' TIMESTAMP (microseconds) and
    the reader dropped the last three digits without a word. A timestamp column whose text
    carries them is read as TIMESTAMP_NS (TIMESTAMPTZ_NS with an offset); one without
    stays TIMESTAMP."""
    write(
        source_root / "events-1.csv",
        "id,at,at_tz,day\n"
        "1,2023-11-14 22:13:20.123456789,2023-11-14 22:13:20.000000001+02,2023-11-14 10:00:00\n",
    )
    if glob:
        write(
            source_root / "events-2.csv",
            "id,at,at_tz,day\n2,2023-11-15 00:00:00,2023-11-15 00:00:00+00,2023-11-15 11:00:00\n",
        )
    request = TableRequest(id="events", source_table="events-*.csv" if glob else "events-1.csv")
    connector.extract(request, writer)
    con = duckdb.connect(str(writer.paths.db), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        kinds = dict(
            con.execute("SELECT column_name, column_type FROM (DESCRIBE events)").fetchall()
        )
        first = con.execute(
            'SELECT "at"::VARCHAR, at_tz::VARCHAR FROM events WHERE id = 1'
        ).fetchone()
    finally:
        con.close()
    assert kinds == {
        "id": "BIGINT",
        "at": "TIMESTAMP_NS",
        "at_tz": "TIMESTAMPTZ_NS",
        "day": "TIMESTAMP",
    }
    assert first == ("2023-11-14 22:13:20.123456789", "2023-11-14 20:13:20.000000001+00")


def test_csv_nanoseconds_late_in_the_sniffers_sample_are_kept(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    """Nanoseconds are looked for in the sniffer's sample (its first 20,480 rows), to its
    last row: a log whose first finer value comes there is typed TIMESTAMP_NS, not
    TIMESTAMP with every such value's last three digits dropped. (Past the sample they
    are not looked for: a whole second read of the file, docs/sync.md.)"""
    lines = [f"{i},2023-11-14 22:13:20.123456" for i in range(20_000)]
    lines.append("20000,2023-11-14 22:13:20.123456789")
    write(source_root / "log.csv", "id,logged\n" + "\n".join(lines) + "\n")
    request = TableRequest(id="log", source_table="log.csv")
    assert {c.name: c.type for c in connector.describe_table(request)}["logged"] == "TIMESTAMP_NS"
    connector.extract(request, writer)
    con = duckdb.connect(str(writer.paths.db), read_only=True)
    try:
        last = con.execute("SELECT logged::VARCHAR FROM log WHERE id = 20000").fetchone()
    finally:
        con.close()
    assert last == ("2023-11-14 22:13:20.123456789",)


@pytest.mark.parametrize("glob", [False, True])
def test_csv_numbers_with_more_digits_than_a_double_keeps_are_read_exactly(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path, glob: bool
) -> None:
    """DuckDB's sniffer types a column of fractions DOUBLE: 0.12345678901234567890 was
    published as 0.12345678901234568 without a word. Such a column is read as the DECIMAL that holds every value (across a
    glob's files too), past 38 digits as its exact text, and the sync's notes say so. A
    column of short numbers stays DOUBLE, and so does one written from DOUBLEs (17 digits
    such as 0.30000000000000004 are that DOUBLE exactly)."""
    lines = [f"{i},{i}.5,{i}.25,1e{i % 5}" for i in range(19_998)]
    lines += ["19998,1.5,2.5,0.30000000000000004", "19999,1.5,2.5,4.9516565718003186e-09"]
    lines.append("20000,0.12345678901234567890,1.5,1e3")
    lines.append("20001,7.5,1234567890123456789012345.1234567890123456789,2")
    if glob:
        write(source_root / "amounts-1.csv", "id,rate,wide,plain\n" + "\n".join(lines) + "\n")
        write(source_root / "amounts-2.csv", "id,rate,wide,plain\n20002,1234567.5,3,4\n")
    else:
        lines.append("20002,1234567.5,3,4")
        write(source_root / "amounts-1.csv", "id,rate,wide,plain\n" + "\n".join(lines) + "\n")
    request = TableRequest(id="amounts", source_table="amounts-*.csv" if glob else "amounts-1.csv")
    published = connector.extract(request, writer)
    con = duckdb.connect(str(writer.paths.db), read_only=True)
    try:
        kinds = dict(
            con.execute("SELECT column_name, column_type FROM (DESCRIBE amounts)").fetchall()
        )
        long = con.execute(
            "SELECT rate::VARCHAR, wide FROM amounts WHERE id IN (20000, 20001, 20002) ORDER BY id"
        ).fetchall()
    finally:
        con.close()
    assert kinds == {
        "id": "BIGINT",
        "rate": "DECIMAL(27,20)",
        "wide": "VARCHAR",
        "plain": "DOUBLE",
    }
    assert long == [
        ("0.12345678901234567890", "1.5"),
        ("7.50000000000000000000", "1234567890123456789012345.1234567890123456789"),
        ("1234567.50000000000000000000", "3"),
    ]
    (said,) = [n for n in published.notes if "significant digits" in n]
    assert "rate DECIMAL(27,20)" in said and "wide VARCHAR (exact text)" in said
    assert "plain" not in said


@pytest.mark.parametrize("name", ["ids.ndjson", "ids.json"])
def test_json_integers_past_ubigint_keep_every_digit(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path, name: str
) -> None:
    """DuckDB reads a JSON integer past UBIGINT (123456789012345678901234567890) as a
    DOUBLE: it was published as 1.2345678901234568e+29 without a word. Such a column is
    read as the DECIMAL that holds every value, and the sync's notes say so."""
    rows = [
        {"id": 1, "ref": 123456789012345678901234567890, "x": 0.30000000000000004},
        {"id": 2, "ref": 5, "x": 1.5},
    ]
    body = "\n".join(json.dumps(r) for r in rows) if name.endswith(".ndjson") else json.dumps(rows)
    write(source_root / name, body)
    published = connector.extract(TableRequest(id="ids", source_table=name), writer)
    assert rows_of(writer, "ids") == [
        (1, Decimal("123456789012345678901234567890"), 0.30000000000000004),
        (2, Decimal("5"), 1.5),
    ]
    (said,) = [n for n in published.notes if "significant digits" in n]
    assert "ref DECIMAL(30,0)" in said and " x " not in said


def test_an_incremental_merge_that_rounds_fresh_values_says_so(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    """The published column is DOUBLE; the next file's long numbers read as a DECIMAL, and
    the merge took DuckDB's common type, DOUBLE: 0.12345678901234567890 was published
    rounded without a word. The sync's notes name the column and the values it changed;
    values the merged type holds say nothing."""
    request = TableRequest(
        id="rates",
        source_table="rates.csv",
        sync_strategy="incremental",
        incremental_column="id",
        primary_key=["id"],
    )
    write(source_root / "rates.csv", "id,v\n1,1.5\n2,2.5\n")
    connector.extract(request, writer)
    write(source_root / "rates.csv", "id,v\n3,0.12345678901234567890\n4,4.5\n")
    published = connector.extract(request, writer)
    (said,) = [n for n in published.notes if "merge" in n]
    assert "v (1 fresh value(s) of DECIMAL(21,20) merged as the published DOUBLE)" in said
    assert "full refresh" in said
    write(source_root / "rates.csv", "id,v\n5,5.5\n")
    assert not [n for n in connector.extract(request, writer).notes if "merge" in n]


def test_csv_files_of_a_glob_are_matched_by_column_name(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    """Monthly exports that gained or lost a column: no column is dropped (DuckDB took the
    first file's columns and dropped one a later file added without a word) and a file
    lacking one is not refused ("Schema mismatch between globbed files")."""
    write(source_root / "orders-01.csv", "id,item\n1,car\n")
    write(source_root / "orders-02.csv", "id,item,coupon\n2,bike,SPRING\n")
    write(source_root / "orders-03.csv", "coupon,id\nFALL,3\n")
    write(source_root / "orders-04.csv", "")  # still being copied: no rows, no column0
    request = TableRequest(id="orders", source_table="orders-*.csv")
    assert [c.name for c in connector.describe_table(request)] == ["id", "item", "coupon"]
    assert connector.extract(request, writer).rows == 3
    assert rows_of(writer, "orders") == [(1, "car", None), (2, "bike", "SPRING"), (3, None, "FALL")]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("id,item\n3,car\n4\n", "orders-02.csv, line 3: Expected Number of Columns: 2 Found: 1"),
        ("Orders of February\nid;item\n3;car\n", "skip the first 1 line(s) of"),
    ],
)
def test_each_csv_file_of_a_glob_is_checked(
    connector: FilesConnector,
    writer: ExtractWriter,
    source_root: Path,
    content: str,
    words: str,
) -> None:
    """A later file of a glob cut short, or with a preamble, fails the sync naming it."""
    write(source_root / "orders-01.csv", "id,item\n1,car\n2,bike\n")
    write(source_root / "orders-02.csv", content)
    request = TableRequest(id="orders", source_table="orders-*.csv")
    for refusal in refused_both_ways(connector, writer, request):
        assert words in refusal.message
        assert refusal.details["file"] == str(source_root / "orders-02.csv")


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_a_csv_not_in_utf8_names_the_option_that_reads_it(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path, encoding: str
) -> None:
    """A latin-1 or UTF-16 export fails naming the file and the 'encoding' option (it said
    "Fix or replace the file", quoting the header as the bad line), and reads with it."""
    path = source_root / "people.csv"
    path.write_bytes("id,name\n1,André\n2,Zoë\n".encode(encoding))
    request = TableRequest(id="people", source_table="people.csv")
    for refusal in refused_both_ways(connector, writer, request):
        assert refusal.message.startswith(f"{path} is not UTF-8 text")
        assert "'encoding' source option" in (refusal.hint or "")
    with_encoding = TableRequest(
        id="people", source_table="people.csv", options={"encoding": encoding}
    )
    assert connector.extract(with_encoding, writer).rows == 2
    assert rows_of(writer, "people") == [(1, "André"), (2, "Zoë")]


def test_a_glob_over_files_of_several_formats_is_refused_naming_them(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    """'*' over CSVs, a parquet and a README: read with the first file's reader, the parquet
    failed "not possible to automatically detect the CSV parsing dialect"."""
    write(source_root / "a.csv", "id,name\n1,a\n")
    duckdb.sql(f"COPY (SELECT 2 AS id, 'b' AS name) TO '{source_root / 'b.parquet'}'")
    write(source_root / "README.md", "the exports\n")
    request = TableRequest(id="t", source_table="*")
    for attempt in (
        lambda: connector.describe_table(request),
        lambda: connector.extract(request, writer),
    ):
        with pytest.raises(InvalidTableSpec) as caught:
            attempt()
        assert caught.value.message.startswith(
            "The files '*' matches are of 3 formats "
            "(csv: a.csv; parquet: b.parquet; unknown: README.md)"
        )
    assert connector.extract(TableRequest(id="t", source_table="*.csv"), writer).rows == 1


def test_a_line_longer_than_duckdb_reads_names_the_option_that_reads_it(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    """A 3 MB text field: the sync failed "Maximum line size of 2000000 bytes exceeded",
    advising to fix or replace the file, and no option could read it."""
    write(source_root / "notes.csv", "id,body\n1," + "x" * 3_000_000 + "\n2,short\n")
    request = TableRequest(id="notes", source_table="notes.csv")
    for refusal in refused_both_ways(connector, writer, request):
        assert "Maximum line size of 2000000 bytes exceeded" in refusal.message
        assert "max_line_size source option" in (refusal.hint or "")
    longer = TableRequest(
        id="notes", source_table="notes.csv", options={"max_line_size": 4_000_000}
    )
    assert connector.extract(longer, writer).rows == 2
    assert rows_of(writer, "notes", "id")[1] == (2, "short")


def test_an_empty_parquet_among_others_fails_the_glob(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    """A parquet still being copied (0 bytes yet) is not a file of no rows: the glob
    fails naming it rather than being published without that file's rows."""
    duckdb.sql(f"COPY (SELECT 1 AS n) TO '{source_root / 'part-1.parquet'}'")
    (source_root / "part-2.parquet").write_bytes(b"")
    with pytest.raises(SourceDataError, match=r"part-2\.parquet"):
        connector.extract(TableRequest(id="parts", source_table="part-*.parquet"), writer)


def test_explicit_types_and_null_string(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    write(source_root / "m.csv", "code,amount,day\n007,N/A,03/01/2026\n010,2.5,04/01/2026\n")
    request = TableRequest(
        id="m",
        source_table="m.csv",
        options={
            "columns": {"code": "VARCHAR", "amount": "DOUBLE", "day": "DATE"},
            "null_string": "N/A",
            "date_format": "%d/%m/%Y",
            "header": True,
        },
    )
    connector.extract(request, writer)
    assert [tuple(map(str, r)) for r in rows_of(writer, "m")] == [
        ("007", "None", "2026-01-03"),
        ("010", "2.5", "2026-01-04"),
    ]


def test_an_empty_quoted_field_is_text_and_an_empty_field_null(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    write(source_root / "notes.csv", 'id,note\n1,"a ""q"" b"\n2,\n3,""\n4,plain\n')
    connector.extract(TableRequest(id="notes", source_table="notes.csv"), writer)
    assert rows_of(writer, "notes") == [(1, 'a "q" b'), (2, None), (3, ""), (4, "plain")]


def test_bad_options_and_paths_are_refused(
    connector: FilesConnector, source_root: Path, tmp_path: Path
) -> None:
    write(source_root / "a.csv", "x\n1\n")
    with pytest.raises(InvalidTableSpec, match="source options"):
        connector.table_options(
            TableRequest(id="a", source_table="a.csv", options={"delimitter": ";"})
        )
    with pytest.raises(InvalidTableSpec, match="not a DuckDB type"):
        connector.table_options(
            TableRequest(
                id="a", source_table="a.csv", options={"columns": {"x": "INT); DROP TABLE t; --"}}
            )
        )
    write(tmp_path / "secret.csv", "s\n1\n")
    with pytest.raises(SourceTableNotFound):
        connector.describe_table(TableRequest(id="s", source_table="../secret.csv"))
    with pytest.raises(InvalidTableSpec):
        connector.describe_table(TableRequest(id="s", source_table="/etc/passwd"))
    with pytest.raises(SourceTableNotFound) as caught:
        connector.describe_table(TableRequest(id="b", source_table="b.csv"))
    assert "a.csv" in (caught.value.hint or "")  # the files that are there are listed


def test_a_symlink_out_of_the_folder_is_neither_offered_nor_read(
    connector: FilesConnector, source_root: Path, tmp_path: Path
) -> None:
    """A link to a file outside the folder was listed among the source's tables, and
    registering it said "No file ... matches 'link.csv'" while listing link.csv as there."""
    write(source_root / "a.csv", "x\n1\n")
    write(tmp_path / "secret.csv", "s\n1\n")
    (source_root / "link.csv").symlink_to(tmp_path / "secret.csv")
    (source_root / "inner.csv").symlink_to(source_root / "a.csv")
    assert {t.source_table for t in connector.list_tables()} == {"a.csv", "inner.csv"}
    with pytest.raises(SourceTableNotFound) as caught:
        connector.describe_table(TableRequest(id="s", source_table="link.csv"))
    assert "leads through a symlink to a file outside the folder" in caught.value.message
    assert str(tmp_path / "secret.csv") not in caught.value.message + (caught.value.hint or "")
    assert [
        c.name for c in connector.describe_table(TableRequest(id="i", source_table="inner.csv"))
    ] == ["x"]


def test_malformed_row_names_file_and_line_and_keeps_previous_data(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    path = write(source_root / "pay.csv", "id,amount\n1,10\n2,20\n")
    request = TableRequest(
        id="pay",
        source_table="pay.csv",
        options={"columns": {"id": "INTEGER", "amount": "INTEGER"}},
    )
    connector.extract(request, writer)
    before = writer.paths.table_file("pay").read_bytes()
    write(path, "id,amount\n1,10\n2,20\n3,lots\n4,40\n")
    with pytest.raises(SourceDataError) as caught:
        connector.extract(request, writer)
    error = caught.value
    assert str(path) in error.message and "line 4" in error.message and "3,lots" in error.message
    assert error.details["line"] == 4
    assert writer.paths.table_file("pay").read_bytes() == before
    assert rows_of(writer, "pay") == [(1, 10), (2, 20)]
    assert not [p for p in writer.paths.data.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    ("name", "damaged", "says", "line"),
    [
        ("good.parquet", None, "No magic bytes found", None),
        ("feed.ndjson", '{"id": 1}\n{"id": 2\n{"id": 3}\n', "Malformed JSON", 3),
        ("feed.json", '[{"id": 1}, {"id": ', "Malformed JSON", None),
    ],
)
def test_damaged_file_is_explained_by_the_reader_not_by_our_sql(
    connector: FilesConnector,
    writer: ExtractWriter,
    source_root: Path,
    name: str,
    damaged: str | None,
    says: str,
    line: int | None,
) -> None:
    """DuckDB ends each error with the statement it ran ("LINE 1: SELECT * FROM
    read_parquet(...)"): that line of our SQL is neither the data's line nor the problem."""
    path = source_root / name
    if name.endswith(".parquet"):
        duckdb.sql(f"COPY (SELECT 1 AS id) TO '{path}'")
    else:
        write(path, '[{"id": 1}]' if name.endswith(".json") else '{"id": 1}\n')
    request = TableRequest(id="feed", source_table=name)
    connector.extract(request, writer)
    if damaged is None:
        path.write_bytes(path.read_bytes()[:20])
    else:
        write(path, damaged)
    for error in refused_both_ways(connector, writer, request):
        assert says in error.message and str(path) in error.message, error.message
        assert "LINE" not in error.message and "SELECT" not in error.message, error.message
        assert error.details["line"] == line
        assert "null_string" not in (error.hint or "")
    assert rows_of(writer, "feed") == [(1,)]


@pytest.mark.parametrize(
    ("cut", "says"),
    [
        ("3,car", "Expected Number of Columns: 3 Found: 2"),
        ('3,"car', "unterminated quote"),
    ],
)
def test_a_csv_cut_short_fails_and_keeps_the_table_not_one_text_column(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path, cut: str, says: str
) -> None:
    """A file read while still being written: no delimiter splits every line alike, and
    DuckDB's sniffer then reads each whole line as one text column named by the header."""
    path = write(source_root / "orders.csv", "id,name,amount\n1,alice,10.5\n2,bob,20\n")
    request = TableRequest(id="orders", source_table="orders.csv")
    connector.extract(request, writer)
    write(path, f"id,name,amount\n1,alice,10.5\n2,bob,20\n{cut}")
    for error in refused_both_ways(connector, writer, request):
        assert says in error.message and str(path) in error.message
    assert rows_of(writer, "orders") == [(1, "alice", 10.5), (2, "bob", 20.0)]


@pytest.mark.parametrize("header", ["id,id,amount", "id,,amount"])
def test_a_csv_cut_short_is_named_by_its_line_whatever_its_header(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path, header: str
) -> None:
    """A header with a repeated or an empty name: the check that names the short line
    failed itself ("Binder Error: Positional argument ''VARCHAR'' cannot follow named
    arguments"), or blamed a whole line ("line 2 ... Found: 3") for the short one."""
    write(source_root / "orders.csv", f"{header}\n1,2,10.5\n3,4\n")
    request = TableRequest(id="orders", source_table="orders.csv")
    for error in refused_both_ways(connector, writer, request):
        assert "orders.csv, line 3: Expected Number of Columns: 3 Found: 2" in error.message


def test_lines_the_sniffer_would_skip_are_never_dropped_quietly(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    """One line split another way at the end made DuckDB's sniffer take every line before
    it for a preamble: the sync published that one line as the whole table."""
    path = write(source_root / "orders.csv", "id,name,amount\n1,alice,10\n2,bob,20\n")
    request = TableRequest(id="orders", source_table="orders.csv")
    connector.extract(request, writer)
    write(path, "id,name,amount\n1,alice,10\n2,bob,20\n3;car;30\n")
    for said in refused_both_ways(connector, writer, request):
        assert "skip the first 3 line(s)" in said.message and str(path) in said.message
        assert said.hint is not None and "skip_rows to 3" in said.hint
    assert rows_of(writer, "orders") == [(1, "alice", 10), (2, "bob", 20)]
    # A real preamble is read once the options say so; blank leading lines quietly.
    report = "Orders report, 2026-11-30\nid,name,amount\n1,alice,10\n2,bob,20\n"
    write(source_root / "report.csv", report)
    with pytest.raises(SourceDataError):
        connector.describe_table(TableRequest(id="report", source_table="report.csv"))
    said_so = TableRequest(id="report", source_table="report.csv", options={"skip_rows": 1})
    assert connector.extract(said_so, writer).rows == 2
    write(source_root / "blank.csv", "\n\nid,name,amount\n1,alice,10\n")
    assert connector.extract(TableRequest(id="blank", source_table="blank.csv"), writer).rows == 1


@pytest.mark.parametrize("name", ["orders.csv", "orders.csv.gz", "orders.ndjson"])
def test_an_empty_file_fails_and_keeps_the_table(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path, name: str
) -> None:
    """An empty file (truncated to be written again, still being copied) has no columns:
    DuckDB reads it as one text column 'column0' (or 'json'), which must not replace the
    table. A header and no rows is a table of no rows."""
    path = source_root / name
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "wt") as out:
        out.write('{"id": 1, "item": "car"}\n' if "json" in name else "id,item\n1,car\n")
    request = TableRequest(id="orders", source_table=name)
    connector.extract(request, writer)
    with opener(path, "wt"):
        pass
    for refusal in refused_both_ways(connector, writer, request):
        assert f"{path} is empty" in refusal.message
        assert refusal.details["file"] == str(path)
    assert rows_of(writer, "orders") == [(1, "car")]
    if "json" not in name:  # a header and no rows is a table of no rows
        with opener(path, "wt") as out:
            out.write("id,item\n")
        assert connector.extract(request, writer).rows == 0


def test_a_one_column_csv_is_still_read(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    write(source_root / "names.csv", "name\nalice\nbob\n")
    request = TableRequest(id="names", source_table="names.csv")
    assert [c.name for c in connector.describe_table(request)] == ["name"]
    assert connector.extract(request, writer).rows == 2


@pytest.mark.parametrize(
    ("glob", "columns"),
    [(False, None), (True, None), (False, {"name": "VARCHAR"}), (True, {"name": "VARCHAR"})],
)
def test_a_blank_line_is_no_row_in_a_csv_of_one_column_as_of_several(
    connector: FilesConnector,
    writer: ExtractWriter,
    source_root: Path,
    glob: bool,
    columns: dict | None,
) -> None:
    """DuckDB skips a blank line in a CSV of several columns, but read one in a CSV of one
    column as a row holding NULL: a list ending in two line breaks gained a NULL row. A
    blank line is no row in either; an empty quoted field is still the empty string."""
    write(source_root / "names.csv", 'name\nalice\n\nbob\n""\n\n')
    write(source_root / "pairs.csv", "id,name\n1,alice\n\n2,\n")
    if glob:
        write(source_root / "names-2.csv", "name\ncarol\n\n")
    options = {"columns": columns} if columns else {}
    names = TableRequest(
        id="names", source_table="names*.csv" if glob else "names.csv", options=options
    )
    connector.extract(names, writer)
    expected = [("",), ("alice",), ("bob",)] + ([("carol",)] if glob else [])
    assert rows_of(writer, "names") == expected
    connector.extract(TableRequest(id="pairs", source_table="pairs.csv"), writer)
    assert rows_of(writer, "pairs") == [(1, "alice"), (2, None)]


def test_a_glob_with_given_columns_reads_quotes_in_every_file(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    """With the columns given, DuckDB read each file of a glob with the quote it sniffed
    in the first: a first file without a quoted field made a later file's quoted comma a
    column too many, and its "" the text '""'."""
    write(source_root / "orders-1.csv", "id,name\n1,carol\n")
    write(source_root / "orders-2.csv", 'id,name\n2,"x,y"\n3,""\n4,"a ""q"" b"\n')
    request = TableRequest(
        id="orders",
        source_table="orders-*.csv",
        options={"columns": {"id": "INTEGER", "name": "VARCHAR"}},
    )
    connector.extract(request, writer)
    assert rows_of(writer, "orders") == [(1, "carol"), (2, "x,y"), (3, ""), (4, 'a "q" b')]


def test_an_empty_file_of_a_glob_is_said_in_the_sync_result(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    """An empty CSV among the files of a glob (one still being copied) was left out
    without a word: the table was published without its rows. The sync's notes (its
    result and history) name it."""
    write(source_root / "orders-1.csv", "id,item\n1,car\n")
    write(source_root / "orders-2.csv", "")
    published = connector.extract(TableRequest(id="orders", source_table="orders-*.csv"), writer)
    assert rows_of(writer, "orders") == [(1, "car")]
    assert any("1 empty file" in n and "orders-2.csv" in n for n in published.notes), (
        published.notes
    )
    write(source_root / "orders-2.csv", "id,item\n2,bus\n")
    published = connector.extract(TableRequest(id="orders", source_table="orders-*.csv"), writer)
    assert not any("empty" in n for n in published.notes), published.notes


def test_incremental_dedupes_and_takes_late_rows(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    path = source_root / "events.csv"
    request = TableRequest(
        id="events",
        source_table="events.csv",
        sync_strategy="incremental",
        incremental_column="updated",
        primary_key=("id",),
        incremental_window_days=2,
    )
    write(path, "id,status,updated\n1,new,2026-03-01\n2,new,2026-03-02\n3,new,2026-03-05\n")
    assert connector.extract(request, writer).rows == 3
    # The source now: id 2 updated, a duplicate of id 3, a late row (4, dated inside the window),
    # a row too old for the window (5), and id 1 gone from the export.
    write(
        path,
        "id,status,updated\n2,paid,2026-03-06\n3,new,2026-03-05\n3,new,2026-03-05\n"
        "4,late,2026-03-04\n5,ancient,2026-02-01\n",
    )
    connector.extract(request, writer)
    got = {r[0]: (r[1], str(r[2])) for r in rows_of(writer, "events")}
    assert got == {
        1: ("new", "2026-03-01"),  # kept: incremental never deletes
        2: ("paid", "2026-03-06"),  # newest version wins
        3: ("new", "2026-03-05"),  # once, not three times
        4: ("late", "2026-03-04"),  # late row inside the window
    }


def test_incremental_refuses_rows_without_their_primary_key(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    """Rows whose key is NULL were all one key to the merge: all but one were dropped
    without a word (two rows became one). The sync now fails saying how many, and the
    previous data stays served."""
    path = source_root / "orders.csv"
    request = TableRequest(
        id="orders",
        source_table="orders.csv",
        sync_strategy="incremental",
        incremental_column="day",
        primary_key=("id",),
    )
    write(path, "id,item,day\n1,car,2026-03-01\n")
    connector.extract(request, writer)
    write(path, "id,item,day\n1,car,2026-03-01\n,bike,2026-03-02\n,boat,2026-03-03\n")
    with pytest.raises(SourceDataError) as caught:
        connector.extract(request, writer)
    assert caught.value.message.startswith(
        "Rows of table 'orders' have no value (NULL) in the primary key (id)"
    )
    assert "where_filters 'id IS NOT NULL'" in (caught.value.hint or "")
    assert rows_of(writer, "orders") == [(1, "car", date(2026, 3, 1))]


def test_a_column_the_table_syncs_by_that_left_the_source_is_named(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    """The export renamed a column the registration names: the sync failed "Malformed data
    in <file>: Candidate bindings: "date"", the one line of DuckDB's error that says
    nothing of what is missing."""
    path = source_root / "events.csv"
    incremental = TableRequest(
        id="events",
        source_table="events.csv",
        sync_strategy="incremental",
        incremental_column="day",
        primary_key=("id",),
    )
    partitioned = TableRequest(
        id="parts",
        source_table="events.csv",
        sync_strategy="partitioned",
        partition_by="day",
        partition_granularity="month",
    )
    write(path, "id,day\n1,2026-01-01\n")
    connector.extract(incremental, writer)
    connector.extract(partitioned, writer)
    write(path, "id,date\n1,2026-01-01\n2,2026-01-02\n")
    for request, what in ((incremental, "incremental column"), (partitioned, "partition column")):
        with pytest.raises(InvalidTableSpec) as caught:
            connector.extract(request, writer)
        assert caught.value.message.startswith(
            f"The {what} 'day' of table '{request.id}' is no longer a column of its source"
        )
        assert "Columns: id, date" in (caught.value.hint or "")
    assert rows_of(writer, "events") == [(1, date(2026, 1, 1))]
    # A row filter naming it: DuckDB's own words, from their first line.
    filtered = TableRequest(
        id="f", source_table="events.csv", where_filters="day > DATE '2020-01-01'"
    )
    with pytest.raises(SourceDataError, match='Referenced column "day" not found'):
        connector.extract(filtered, writer)


def test_incremental_without_key_appends_only_newer(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    path = source_root / "log.csv"
    request = TableRequest(
        id="log", source_table="log.csv", sync_strategy="incremental", incremental_column="n"
    )
    write(path, "n\n1\n2\n")
    connector.extract(request, writer)
    write(path, "n\n1\n2\n3\n")
    assert connector.extract(request, writer).rows == 3
    assert rows_of(writer, "log") == [(1,), (2,), (3,)]


@pytest.mark.parametrize("window", [None, 2])
def test_incremental_without_key_never_doubles_rows_read_again(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path, window: int | None
) -> None:
    """Rows at or after the cutoff are read again at every sync: with no primary key to
    merge by, a row is added only for the copies the source holds beyond those published."""
    path = source_root / "log.csv"
    request = TableRequest(
        id="log",
        source_table="log.csv",
        sync_strategy="incremental",
        incremental_column="day",
        incremental_window_days=window,
    )
    write(path, "msg,day\nboot,2026-03-01\nping,2026-03-02\nping,2026-03-02\n")
    for _ in range(3):
        assert connector.extract(request, writer).rows == 3
    # A late row dated at the watermark, a third copy of a repeated row, and a new day.
    write(
        path,
        "msg,day\nboot,2026-03-01\nping,2026-03-02\nping,2026-03-02\nping,2026-03-02\n"
        "late,2026-03-02\nstop,2026-03-03\n",
    )
    for _ in range(2):
        assert connector.extract(request, writer).rows == 6
    # A column added (or removed) since: the rows read again are still the same rows.
    write(
        path,
        "msg,day,host\nboot,2026-03-01,a\nping,2026-03-02,a\nping,2026-03-02,a\n"
        "ping,2026-03-02,a\nlate,2026-03-02,a\nstop,2026-03-03,a\n",
    )
    assert connector.extract(request, writer).rows == 6
    assert sorted(r[:2] for r in rows_of(writer, "log", "day, msg")) == sorted(
        [
            ("boot", date(2026, 3, 1)),
            ("late", date(2026, 3, 2)),
            ("ping", date(2026, 3, 2)),
            ("ping", date(2026, 3, 2)),
            ("ping", date(2026, 3, 2)),
            ("stop", date(2026, 3, 3)),
        ]
    )


def test_max_history_days_drops_old_rows(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    write(source_root / "h.csv", "id,day\n1,2026-01-01\n2,2026-03-01\n3,2026-03-10\n")
    request = TableRequest(
        id="h",
        source_table="h.csv",
        sync_strategy="incremental",
        incremental_column="day",
        primary_key=("id",),
        max_history_days=30,
    )
    connector.extract(request, writer)
    assert [r[0] for r in rows_of(writer, "h")] == [2, 3]


def test_max_history_days_keeps_rows_without_a_moment(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    """A row whose incremental column is NULL is not older than anything: it stays."""
    write(source_root / "h.csv", "id,day\n1,2026-01-01\n2,\n3,2026-03-10\n")
    request = TableRequest(
        id="h",
        source_table="h.csv",
        sync_strategy="incremental",
        incremental_column="day",
        primary_key=("id",),
        max_history_days=30,
    )
    for _ in range(2):
        connector.extract(request, writer)
        assert sorted(r[0] for r in rows_of(writer, "h")) == [2, 3]


def test_days_are_counted_back_only_from_dates(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    """A window or history over a number is refused naming the column and its type (it
    failed as "Malformed data in <file>: Candidate functions:"); over text holding dates it
    counts days as over a date."""
    write(source_root / "v.csv", "id,version\n1,10\n2,20\n")
    numbered = TableRequest(
        id="v",
        source_table="v.csv",
        sync_strategy="incremental",
        incremental_column="version",
        incremental_window_days=2,
    )
    with pytest.raises(InvalidTableSpec) as caught:
        connector.extract(numbered, writer)
    assert "'version', which is BIGINT" in caught.value.message
    texts = TableRequest(
        id="t",
        source_table="t.csv",
        sync_strategy="incremental",
        incremental_column="day",
        primary_key=("id",),
        incremental_window_days=2,
        options={"columns": {"id": "BIGINT", "day": "VARCHAR"}, "header": True},
    )
    write(source_root / "t.csv", "id,day\n1,2026-03-01\n2,2026-03-05\n")
    connector.extract(texts, writer)
    write(source_root / "t.csv", "id,day\n1,2026-03-01\n3,2026-03-04\n4,2026-03-02\n")
    connector.extract(texts, writer)
    assert [r[0] for r in rows_of(writer, "t")] == [1, 2, 3]  # 4 is before the window


@pytest.mark.parametrize(
    ("window", "key"), [(None, None), (None, ("id",)), (1, None), (1, ("id",))]
)
def test_text_incremental_columns_compare_the_instants_their_offsets_name(
    connector: FilesConnector,
    writer: ExtractWriter,
    source_root: Path,
    window: int | None,
    key: tuple[str, ...] | None,
) -> None:
    """Text with offsets is compared as the instants it names: ``10:00:00+0200`` is 08:00
    UTC, before ``09:00:00+0000``. Read as a TIMESTAMP (the offset dropped) or compared as
    text, the later row was older than the watermark and never taken, and of two versions
    of a key the earlier one won."""
    request = TableRequest(
        id="t",
        source_table="t.csv",
        sync_strategy="incremental",
        incremental_column="at",
        primary_key=key,
        incremental_window_days=window,
        options={"columns": {"id": "BIGINT", "v": "VARCHAR", "at": "VARCHAR"}, "header": True},
    )
    write(source_root / "t.csv", "id,v,at\n1,a,2026-01-03 01:00:00+0200\n")  # 01-02 23:00Z
    connector.extract(request, writer)
    write(
        source_root / "t.csv",
        "id,v,at\n2,old,2026-01-02 00:30:00+0000\n"  # inside a day's window before 23:00Z
        "3,a,2026-01-03 01:30:00+0200\n3,b,2026-01-03 00:45:00+0000\n",  # 23:30Z, 00:45Z
    )
    connector.extract(request, writer)
    got = [r[:2] for r in rows_of(writer, "t", "id, v")]
    late = [(2, "old")] if window else []
    newest = [(3, "a"), (3, "b")] if key is None else [(3, "b")]
    assert got == [(1, "a"), *late, *newest]
    write(source_root / "t.csv", "id,v,at\n4,a,2026-01-03 00:50:00+0000\n")
    connector.extract(request, writer)  # later than the newest published, 00:45Z
    assert (4, "a") in [r[:2] for r in rows_of(writer, "t", "id, v")]


def partition_state(writer: ExtractWriter, table: str) -> dict[str, tuple[int, str]]:
    folder = writer.paths.table_folder(table)
    return {
        part.parent.name: (part.stat().st_mtime_ns, part.read_bytes().hex()[:64])
        for part in folder.glob("*/*.parquet")
    }


def test_partitioned_rewrites_only_changed_partitions(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    path = source_root / "orders.csv"
    request = TableRequest(
        id="orders",
        source_table="orders.csv",
        sync_strategy="partitioned",
        partition_by="day",
        partition_granularity="month",
    )
    write(
        path, "id,day,amount\n1,2026-01-05,10\n2,2026-01-20,20\n3,2026-02-03,30\n4,2026-03-09,40\n"
    )
    first = connector.extract(request, writer)
    assert first.rows == 4 and len(first.files) == 3
    before = partition_state(writer, "orders")
    assert set(before) == {"day_month=2026-01", "day_month=2026-02", "day_month=2026-03"}

    # February changes, March disappears, April appears, January is untouched.
    write(
        path, "id,day,amount\n1,2026-01-05,10\n2,2026-01-20,20\n3,2026-02-03,99\n5,2026-04-01,50\n"
    )
    second = connector.extract(request, writer)
    after = partition_state(writer, "orders")
    assert set(after) == {"day_month=2026-01", "day_month=2026-02", "day_month=2026-04"}
    assert after["day_month=2026-01"] == before["day_month=2026-01"]  # same file, same mtime
    assert after["day_month=2026-02"][0] != before["day_month=2026-02"][0]
    assert second.unchanged_parts == 1
    assert rows_of(writer, "orders") == [
        (1, date(2026, 1, 5), 10),
        (2, date(2026, 1, 20), 20),
        (3, date(2026, 2, 3), 99),
        (5, date(2026, 4, 1), 50),
    ]
    third = connector.extract(request, writer)
    assert third.unchanged_parts == 3 and partition_state(writer, "orders") == after


def test_partitioned_day_and_year_and_empty(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    write(
        source_root / "d.csv",
        "id,at\n1,2026-01-01 10:00:00\n2,2026-01-02 11:00:00\n3,2027-05-05 00:00:00\n",
    )
    for granularity, expected in (("day", 3), ("year", 2)):
        request = TableRequest(
            id=f"d_{granularity}",
            source_table="d.csv",
            sync_strategy="partitioned",
            partition_by="at",
            partition_granularity=granularity,
        )
        assert len(connector.extract(request, writer).files) == expected
    write(source_root / "none.csv", "id,at\n")
    empty = TableRequest(
        id="none",
        source_table="none.csv",
        sync_strategy="partitioned",
        partition_by="at",
        partition_granularity="day",
        options={"columns": {"id": "INTEGER", "at": "TIMESTAMP"}},
    )
    published = connector.extract(empty, writer)
    assert published.rows == 0 and rows_of(writer, "none") == []


def test_text_with_offsets_is_partitioned_by_the_instant_it_names(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    """``2026-02-01 01:00:00+0200`` is 23:00 UTC on January 31st: its row belongs to
    January. Cast to a TIMESTAMP, the offset was dropped and it fell into February."""
    write(
        source_root / "t.csv",
        "id,at\n1,2026-02-01 01:00:00+0200\n2,2026-02-01 03:00:00+0200\n3,2026-01-15 12:00:00\n",
    )
    request = TableRequest(
        id="t",
        source_table="t.csv",
        sync_strategy="partitioned",
        partition_by="at",
        partition_granularity="month",
        options={"columns": {"id": "BIGINT", "at": "VARCHAR"}, "header": True},
    )
    connector.extract(request, writer)
    con = duckdb.connect()
    parts = {
        part.parent.name: sorted(r[0] for r in con.execute(f"SELECT id FROM '{part}'").fetchall())
        for part in writer.paths.table_folder("t").glob("*/*.parquet")
    }
    assert parts == {"at_month=2026-01": [1, 3], "at_month=2026-02": [2]}


PARTITION_IN_ZONE = """
import sys
from pathlib import Path
from agnes_sync.connector import SourceContext, TableRequest
from agnes_sync.contract import ExtractWriter
from connectors.files.connector import FilesConnector
root, data = Path(sys.argv[1]), Path(sys.argv[2])
connector = FilesConnector(SourceContext("files", {"path": str(root)}, data))
request = TableRequest(
    id="events", source_table="events.parquet", sync_strategy="partitioned",
    partition_by="at", partition_granularity="month",
)
connector.extract(request, ExtractWriter(data / "extracts", "files"))
"""


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Tokyo"])
def test_timestamps_with_a_zone_are_partitioned_in_utc(
    source_root: Path, tmp_path: Path, zone: str
) -> None:
    """A TIMESTAMP WITH TIME ZONE was cut into partitions in the server process's zone: the
    same rows fell into other months on a server in New York or Tokyo than in UTC."""
    duckdb.sql(
        "COPY (SELECT 1 AS id, TIMESTAMPTZ '2026-01-31 23:30:00+00' AS at UNION ALL "
        "SELECT 2, TIMESTAMPTZ '2026-02-01 02:00:00+00') "
        f"TO '{source_root / 'events.parquet'}'"
    )
    data = tmp_path / zone.replace("/", "_")
    env = {**os.environ, "TZ": zone}
    subprocess.run(
        [sys.executable, "-c", PARTITION_IN_ZONE, str(source_root), str(data)],
        check=True,
        env=env,
    )
    writer = ExtractWriter(data / "extracts", "files")
    assert partition_rows(writer, "events") == {"at_month=2026-01": [1], "at_month=2026-02": [2]}


FILTER_AND_PROFILE_IN_ZONE = """
import json, sys
from pathlib import Path
from agnes_sync.connector import SourceContext, TableRequest
from agnes_sync.contract import ExtractWriter
from agnes_sync.profile import profile_parquet
from connectors.files.connector import FilesConnector
root, data = Path(sys.argv[1]), Path(sys.argv[2])
connector = FilesConnector(SourceContext("files", {"path": str(root)}, data))
request = TableRequest(
    id="events", source_table="events.parquet", where_filters="at >= '2026-02-01'"
)
writer = ExtractWriter(data / "extracts", "files")
published = connector.extract(request, writer)
files = [str(writer.paths.root / f.path) for f in published.files]
profile = profile_parquet(files, connector.duckdb_cursor(writer.paths.root))
print(json.dumps([[c.min, c.max] for c in profile.columns if c.name == "at"]))
"""


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Tokyo"])
def test_where_filters_and_profiles_read_times_in_utc(
    source_root: Path, tmp_path: Path, zone: str
) -> None:
    """An admin's row filter and the table's profile were read in the server process's
    zone: ``at >= '2026-02-01'`` kept a row of 2026-01-31 23:30 UTC on a server in Tokyo,
    and the profile's min and max were written in that zone; queries read both in UTC."""
    duckdb.sql(
        "COPY (SELECT 1 AS id, TIMESTAMPTZ '2026-01-31 23:30:00+00' AS at UNION ALL "
        "SELECT 2, TIMESTAMPTZ '2026-02-01 02:00:00+00') "
        f"TO '{source_root / 'events.parquet'}'"
    )
    data = tmp_path / zone.replace("/", "_")
    done = subprocess.run(
        [sys.executable, "-c", FILTER_AND_PROFILE_IN_ZONE, str(source_root), str(data)],
        check=True,
        env={**os.environ, "TZ": zone},
        capture_output=True,
        text=True,
    )
    assert json.loads(done.stdout) == [["2026-02-01 02:00:00+00", "2026-02-01 02:00:00+00"]]
    writer = ExtractWriter(data / "extracts", "files")
    assert rows_of(writer, "events") == [(2, datetime(2026, 2, 1, 2, tzinfo=UTC))]


def partition_rows(writer: ExtractWriter, table: str) -> dict[str, list[int]]:
    folder = writer.paths.table_folder(table)
    return {
        part.parent.name: [
            r[0]
            for r in duckdb.sql(f"SELECT id FROM read_parquet('{part}') ORDER BY id").fetchall()
        ]
        for part in sorted(folder.glob("*/*.parquet"))
    }


def test_where_filters_are_predicates_only(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    write(source_root / "w.csv", "id,country\n1,US\n2,DE\n3,US\n")
    request = TableRequest(id="w", source_table="w.csv", where_filters="country = 'US'")
    assert connector.extract(request, writer).rows == 2
    for bad in (
        "1 = 1; DROP TABLE x",
        "id IN (SELECT 1)",
        "id = (SELECT count(*) FROM read_csv('/etc/passwd'))",
    ):
        with pytest.raises(InvalidTableSpec):
            connector.extract(TableRequest(id="w", source_table="w.csv", where_filters=bad), writer)
    broken = TableRequest(id="w", source_table="w.csv", where_filters="country = 'US' AND")
    with pytest.raises(InvalidTableSpec) as raised:
        connector.extract(broken, writer)
    # sqlglot's problem and where, never its Python class names
    assert raised.value.message == (
        "where_filters does not parse: Required keyword: 'expression' missing for And "
        "(line 1, column 18)."
    )


def test_capabilities_are_enforced(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    write(source_root / "r.csv", "x\n1\n")
    with pytest.raises(ConnectorCapabilityMissing, match="remote"):
        connector.extract(TableRequest(id="r", source_table="r.csv", query_mode="remote"), writer)


def test_demo_exports_round_trip(
    connector: FilesConnector, writer: ExtractWriter, source_root: Path
) -> None:
    """Formats as the demo writes them: NDJSON with timestamps and nulls."""
    rows = [
        {"id": 1, "at": "2026-01-01 10:00:00", "score": None},
        {"id": 2, "at": "2026-01-02 11:00:00", "score": 4},
    ]
    write(source_root / "t.ndjson", "\n".join(json.dumps(r) for r in rows) + "\n")
    connector.extract(TableRequest(id="t", source_table="t.ndjson"), writer)
    assert [(r[0], r[2]) for r in rows_of(writer, "t")] == [(1, None), (2, 4)]


def test_the_connector_s_duckdb_reads_its_folder_and_its_extract_only(
    tmp_path: Path, connector: FilesConnector, source_root: Path, writer: ExtractWriter
) -> None:
    """An admin's where_filters runs in this DuckDB. Behind the filter's own checks, the
    engine itself reaches no file outside the source folder and the extract being written
    (no /proc/self/environ: the server's secrets), loads no extension, changes no setting."""
    (source_root / "a.csv").write_text("x\n1\n")
    outside = tmp_path / "outside.csv"
    outside.write_text("secret\n42\n")
    con = connector.duckdb_cursor(writer.paths.root)
    try:
        assert con.execute(f"SELECT x FROM read_csv('{source_root / 'a.csv'}')").fetchall() == [
            (1,)
        ]
        written = writer.paths.root / "t.parquet"
        con.execute(f"COPY (SELECT 1 AS y) TO '{written}' (FORMAT parquet)")
        assert con.execute(f"SELECT y FROM '{written}'").fetchall() == [(1,)]
        for sql in (
            f"SELECT * FROM read_csv('{outside}')",
            "SELECT * FROM read_text('/proc/self/environ')",
            f"SELECT * FROM read_csv('{source_root}/../outside.csv')",
            f"COPY (SELECT 1) TO '{tmp_path / 'elsewhere.parquet'}' (FORMAT parquet)",
            "SELECT * FROM glob('/etc/*')",
        ):
            with pytest.raises(duckdb.PermissionException):
                con.execute(sql)
        for sql in ("SET enable_external_access = true", "SET allowed_directories = ['/']"):
            with pytest.raises(duckdb.Error, match=r"locked|disabled|cannot"):
                con.execute(sql)
    finally:
        con.close()
    assert not (tmp_path / "elsewhere.parquet").exists()
    described = connector.duckdb_cursor()  # no extract: the source folder alone
    try:
        with pytest.raises(duckdb.PermissionException):
            described.execute(f"SELECT * FROM '{written}'")
    finally:
        described.close()
