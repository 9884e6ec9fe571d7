"""The extract contract: the writer publishes atomically; the reader names every problem."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from agnes_sync import atomic
from agnes_sync.contract import ExtractPaths, ExtractWriter, RemoteAttach
from agnes_sync.errors import ExtractInvalid
from agnes_sync.extract_reader import read_extract
from agnes_sync.hashing import file_hash


def stage(writer: ExtractWriter, table: str, rows: int = 10) -> Path:
    staged = writer.staging_file(table)
    duckdb.sql(
        f"COPY (SELECT range AS id, 'x' AS v FROM range({rows})) TO '{staged}' (FORMAT parquet)"
    )
    return staged


def test_publish_records_data_then_metadata(tmp_path: Path) -> None:
    writer = ExtractWriter(tmp_path / "extracts", "src")
    published = writer.publish_file("orders", stage(writer, "orders", 25), description="Orders")
    destination = writer.paths.table_file("orders")
    assert destination.is_file() and not list(writer.paths.data.glob(".*"))
    assert published.rows == 25 and published.size_bytes == destination.stat().st_size
    assert published.files[0].content_hash == file_hash(destination)
    extract = read_extract(writer.paths, strict=True)
    table = extract.tables["orders"]
    assert (table.rows, table.query_mode, table.description) == (25, "local", "Orders")
    assert [f.path for f in table.files] == [destination]
    con = duckdb.connect(str(writer.paths.db), read_only=True)
    assert con.execute("SELECT count(*) FROM orders").fetchone() == (25,)
    con.close()


def test_republishing_replaces_whole_file_and_metadata(tmp_path: Path) -> None:
    writer = ExtractWriter(tmp_path / "extracts", "src")
    writer.publish_file("t", stage(writer, "t", 5), description="")
    second = writer.publish_file("t", stage(writer, "t", 7), description="")
    assert second.rows == 7
    assert read_extract(writer.paths, strict=True).tables["t"].rows == 7


def test_remote_table_needs_no_data(tmp_path: Path, warehouse: Path) -> None:
    writer = ExtractWriter(tmp_path / "extracts", "wh")
    writer.publish_remote(
        "events",
        attach=RemoteAttach("warehouse", "duckdb", str(warehouse)),
        remote_name='"main"."events"',
        description="Events",
        rows=3000,
        size_bytes=1234,
        bind_view=True,
    )
    extract = read_extract(writer.paths, strict=True)
    table = extract.tables["events"]
    assert table.remote is not None and table.remote.url == str(warehouse)
    assert table.query_mode == "remote" and table.files == []
    assert not list(writer.paths.data.iterdir())


def test_drop_removes_data_view_and_metadata(tmp_path: Path) -> None:
    writer = ExtractWriter(tmp_path / "extracts", "src")
    writer.publish_file("gone", stage(writer, "gone"), description="")
    writer.drop("gone")
    assert not writer.paths.table_file("gone").exists()
    assert read_extract(writer.paths, strict=True).tables == {}


def test_sweep_removes_only_leftover_temporaries(tmp_path: Path) -> None:
    writer = ExtractWriter(tmp_path / "extracts", "src")
    writer.publish_file("t", stage(writer, "t"), description="")
    leftover = stage(writer, "t")  # as if a writer had been killed before publishing
    other = stage(writer, "other")
    assert writer.sweep("t") == 1
    assert not leftover.exists() and other.exists() and writer.paths.table_file("t").exists()
    atomic.discard(other)


def broken_extract(tmp_path: Path, sql: str, *, meta: bool = True) -> ExtractPaths:
    paths = ExtractPaths.of(tmp_path / "extracts", "bad")
    paths.data.mkdir(parents=True)
    con = duckdb.connect(str(paths.db))
    if meta:
        con.execute(
            "CREATE TABLE _meta (table_name VARCHAR, description VARCHAR, rows BIGINT, "
            "size_bytes BIGINT, extracted_at TIMESTAMPTZ, query_mode VARCHAR)"
        )
    con.execute(sql)
    con.close()
    return paths


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("SELECT 1", "_meta is missing"),
        (
            "INSERT INTO _meta VALUES ('t', '', 1, 1, now(), 'local')",
            "no view named 't'",
        ),
        (
            "INSERT INTO _meta VALUES ('t', '', 1, 1, now(), 'sideways')",
            "query_mode 'sideways'",
        ),
        (
            "INSERT INTO _meta VALUES ('t', '', 1, 1, now(), 'remote')",
            "remote table has no _remote_tables row",
        ),
        (
            "CREATE VIEW stray AS SELECT 1 AS x",
            "view 'stray' has no _meta row",
        ),
        (
            "INSERT INTO _meta VALUES ('t', '', 1, 1, now(), 'local'); "
            "CREATE VIEW t AS SELECT * FROM read_csv('/etc/passwd')",
            "not read_parquet",
        ),
        (
            "INSERT INTO _meta VALUES ('t', '', 1, 1, now(), 'local'); "
            "COPY (SELECT 1 AS x) TO '/tmp/agnes-outside.parquet' (FORMAT parquet); "
            "CREATE VIEW t AS SELECT * FROM read_parquet('/tmp/agnes-outside.parquet')",
            "outside",
        ),
        (
            "INSERT INTO _meta VALUES ('t', '', 1, 1, now(), 'local'); "
            "CREATE VIEW t AS SELECT * FROM glob('/etc/*')",
            "not read_parquet",
        ),
    ],
)
def test_reader_names_each_problem(tmp_path: Path, sql: str, problem: str) -> None:
    paths = broken_extract(tmp_path, sql, meta="_meta is missing" not in problem)
    extract = read_extract(paths)
    assert any(problem in p for p in extract.problems), extract.problems
    assert all(f"extract 'bad' ({paths.db})" in p for p in extract.problems)
    with pytest.raises(ExtractInvalid) as caught:
        read_extract(paths, strict=True)
    assert caught.value.details["problems"] == extract.problems


def test_reader_checks_meta_columns_and_files(tmp_path: Path) -> None:
    paths = ExtractPaths.of(tmp_path / "extracts", "bad")
    paths.data.mkdir(parents=True)
    con = duckdb.connect(str(paths.db))
    con.execute("CREATE TABLE _meta (table_name VARCHAR, rows VARCHAR)")
    con.close()
    problems = read_extract(paths).problems
    assert any("no column 'description'" in p for p in problems)
    assert any("_meta.rows is VARCHAR, expected BIGINT" in p for p in problems)

    writer = ExtractWriter(tmp_path / "extracts", "good")
    writer.publish_file("t", stage(writer, "t"), description="")
    writer.paths.table_file("t").write_bytes(b"truncated")
    problems = read_extract(writer.paths).problems
    assert any("bytes, _files says" in p for p in problems)
    writer.paths.table_file("t").unlink()
    assert any("listed in _files but missing" in p for p in read_extract(writer.paths).problems)


def test_missing_or_garbage_extract(tmp_path: Path) -> None:
    paths = ExtractPaths.of(tmp_path / "extracts", "nothing")
    assert read_extract(paths).problems == [
        f"extract 'nothing' ({paths.db}): extract.duckdb is missing"
    ]
    paths.root.mkdir(parents=True)
    paths.db.write_bytes(b"not duckdb" * 100)
    assert "cannot be opened" in read_extract(paths).problems[0]
