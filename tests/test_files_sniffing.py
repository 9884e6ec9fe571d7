"""A CSV sniffed once reads as DuckDB's auto-detecting reader reads it.

A sync sniffs a single CSV once and reads it with what was found stated (no sniffing at
each bind, ~20 ms each on a 45 MB file). Whatever the file's dialect, what is published
must be what ``read_csv`` with auto-detection gives: the same columns, types and rows.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import duckdb
import pytest

from agnes_sync.connector import SourceContext, TableRequest
from agnes_sync.contract import ExtractWriter
from connectors.files.connector import FilesConnector
from connectors.files.options import FileTableOptions
from connectors.files.readers import reader_sql

CASES: list[tuple[str, bytes, dict[str, Any]]] = [
    (
        "quoted.csv",
        b'id,note,amount\n1,"a, b",1.5\n2,"line\nbreak",2\n3,"say ""hi""",\n4,,-7.25\n',
        {},
    ),
    ("semicolons.csv", b"day;count;label\n31/12/2024;3;x\n01/02/2025;4;y\n", {}),
    (
        "stamps.csv",
        b"at,value\n2024-01-02 03:04:05.123,1\n2024-02-03 04:05:06.5,2\n",
        {},
    ),
    ("windows.csv", b"id,name\r\n1,Ada\r\n2,Bo\r\n", {}),
    ("old_mac.csv", b"id,name\r1,Ada\r2,Bo\r", {}),
    ("backslashes.csv", b'id,text\n1,"say \\"hi\\" now"\n2,"plain"\n', {}),
    ("no_newline.csv", b"id,name\n1,Ada", {}),
    ("headerless.csv", b"1,2.5,x\n2,3.5,y\n3,4.5,z\n", {}),
    ("nulls.csv", b'id,score,text\n1,NA,""\n2,3,\n', {"null_string": "NA"}),
    ("blank_start.csv", b"\n\nid,name\n1,Ada\n2,Bo\n", {}),
    ("tabs.tsv", b"id\tname\n1\tAda\n2\tBo\n", {}),
    ("titled.csv", b"Report of March\nid,name\n1,Ada\n", {"skip_rows": 1}),
    ("latin.csv", "id,name\n1,Zoë\n2,Åsa\n".encode("latin-1"), {"encoding": "latin-1"}),
    ("quote's.csv", b'it\'s,"say ""x"""\n1,2\n', {}),
    ("given.csv", b"id,name\n1,Ada\n", {"columns": {"id": "INTEGER", "name": "VARCHAR"}}),
    ("booleans.csv", b"flag,n\ntrue,1\nfalse,2\n", {"header": True, "delimiter": ","}),
    # The sniffer's 20,480 rows span two of its buffers (each just longer than a line may
    # be, 2 MB): the text in row 19,000 makes the column VARCHAR, as DuckDB's own
    # reader (a 32 MB buffer) reads it.
    # ISO dates in the sniffer's sample, then rows DuckDB's date cast reads as dates too
    (
        "late_dates.csv",
        b"id,day\n"
        + b"".join(b"%d,2024-01-%02d\n" % (i, 1 + i % 28) for i in range(21_000))
        + b"21000,2024/02/03\n21001,2024-02-04 10:00:00\n",
        {},
    ),
    (
        "late_text.csv",
        b"id,pad,code\n"
        + b"".join(
            b"%d,%s,%s\n" % (i, b"p" * 180, b"x" if i == 19_000 else b"%d" % i)
            for i in range(20_000)
        ),
        {},
    ),
]


def _write(root: Path, name: str, content: bytes, gz: bool) -> str:
    name = name + ".gz" if gz else name
    path = root / name
    path.write_bytes(gzip.compress(content) if gz else content)
    return name


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize(("name", "content", "options"), CASES, ids=[c[0] for c in CASES])
def test_a_csv_synced_is_what_the_auto_detecting_reader_reads(
    tmp_path: Path, name: str, content: bytes, options: dict[str, Any], gz: bool
) -> None:
    root = tmp_path / "files"
    root.mkdir()
    source = _write(root, name, content, gz)
    connector = FilesConnector(SourceContext("files", {"path": str(root)}, tmp_path))
    writer = ExtractWriter(tmp_path / "extracts", "files")
    request = TableRequest(id="t", source_table=source, options=options)
    connector.extract(request, writer)

    con = duckdb.connect()
    auto = f"SELECT * FROM {reader_sql([root / source], FileTableOptions(**options))}"
    published = f"SELECT * FROM read_parquet('{writer.paths.table_file('t')}')"
    assert con.execute(f"DESCRIBE {published}").fetchall() == (
        con.execute(f"DESCRIBE {auto}").fetchall()
    )
    assert con.execute(published).fetchall() == con.execute(auto).fetchall()
    described = connector.describe_table(request)
    assert [(c.name, c.type) for c in described] == [
        (r[0], r[1]) for r in con.execute(f"DESCRIBE {auto}").fetchall()
    ]


GLOBBED = [c for c in CASES if "columns" not in c[2]] + [
    ("mixed.csv", b"id,amount\n1,2\n", {}),  # beside b's: a column more, another type
]


@pytest.mark.parametrize(("name", "content", "options"), GLOBBED, ids=[c[0] for c in GLOBBED])
def test_a_csv_glob_synced_is_what_the_auto_detecting_reader_reads(
    tmp_path: Path, name: str, content: bytes, options: dict[str, Any]
) -> None:
    """Each file of a glob is sniffed once and read as found, matched by column name: the
    same columns, types and rows as ``read_csv`` over the glob with ``union_by_name``."""
    root = tmp_path / "files"
    root.mkdir()
    first = _write(root, "a_" + name, content, False)
    other = b"id,amount,extra\n3,4.5,x\n" if name == "mixed.csv" else content
    second = _write(root, "b_" + name, other, False)
    connector = FilesConnector(SourceContext("files", {"path": str(root)}, tmp_path))
    writer = ExtractWriter(tmp_path / "extracts", "files")
    glob = "?_" + name
    request = TableRequest(id="t", source_table=glob, options=options)
    connector.extract(request, writer)

    con = duckdb.connect()
    files = [root / first, root / second]
    auto = f"SELECT * FROM {reader_sql(files, FileTableOptions(**options))}"
    published = f"SELECT * FROM read_parquet('{writer.paths.table_file('t')}')"
    assert con.execute(f"DESCRIBE {published}").fetchall() == (
        con.execute(f"DESCRIBE {auto}").fetchall()
    )
    assert con.execute(published).fetchall() == con.execute(auto).fetchall()


def test_a_csv_glob_is_sniffed_once_per_file(tmp_path: Path) -> None:
    """The glob's reader, once its files are checked, states what each file's sniff found:
    binding it (each DESCRIBE of the sync, its COPY) reads no file. The glob's own reader
    sniffed every file at each bind (~3 sniffs of each file per sync)."""
    root = tmp_path / "files"
    root.mkdir()
    for part in ("a", "b"):
        (root / f"{part}.csv").write_text("id,name\n1,Ada\n")
    connector = FilesConnector(SourceContext("files", {"path": str(root)}, tmp_path))
    request = TableRequest(id="t", source_table="*.csv")
    sql, files = connector.source_sql(request)
    con = connector.duckdb_cursor()
    try:
        checked, _ = connector._checked_source(con, sql, files, request)
        for part in ("a", "b"):  # what a sniff at a later bind would find
            (root / f"{part}.csv").write_text("other;names;here\nx;y;z\n")
        described = con.execute(f"DESCRIBE {checked}").fetchall()
    finally:
        con.close()
    assert [(r[0], r[1]) for r in described] == [("id", "BIGINT"), ("name", "VARCHAR")]
