"""The cheap publish keeps every promise of the expensive one: the contract tables appear
when any is missing, the rows counted by the COPY are the file's, the metadata commits only
once the rename is on disk, and the file a publish replaces is gone afterwards."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from agnes_sync import atomic, attach_host
from agnes_sync.connector import SourceContext, TableRequest
from agnes_sync.contract import CONTRACT_TABLES, ExtractWriter
from agnes_sync.extract_reader import read_extract
from connectors.files.connector import FilesConnector


def _staged(writer: ExtractWriter, table: str, n: int) -> Path:
    staged = writer.staging_file(table)
    duckdb.sql(f"COPY (SELECT range AS id FROM range({n})) TO '{staged}' (FORMAT parquet)")
    return staged


def _tables(writer: ExtractWriter) -> set[str]:
    con = duckdb.connect(str(writer.paths.db), read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    finally:
        con.close()


def test_a_new_extract_gets_every_contract_table(tmp_path: Path) -> None:
    writer = ExtractWriter(tmp_path / "extracts", "src")
    writer.publish_file("orders", _staged(writer, "orders", 3), description="d")
    assert _tables(writer) == set(CONTRACT_TABLES)


def test_contract_tables_a_connector_left_out_are_added(tmp_path: Path) -> None:
    writer = ExtractWriter(tmp_path / "extracts", "src")
    con = duckdb.connect(str(writer.paths.db))
    con.execute(
        "CREATE TABLE _meta (table_name VARCHAR PRIMARY KEY, description VARCHAR, rows BIGINT,"
        " size_bytes BIGINT, extracted_at TIMESTAMPTZ, query_mode VARCHAR)"
    )
    con.execute("INSERT INTO _meta VALUES ('old', 'kept', 1, 1, now(), 'local')")
    con.close()
    writer.publish_file("orders", _staged(writer, "orders", 3), description="d")
    assert _tables(writer) == set(CONTRACT_TABLES)
    con = duckdb.connect(str(writer.paths.db), read_only=True)
    assert con.execute("SELECT table_name FROM _meta ORDER BY 1").fetchall() == [
        ("old",),
        ("orders",),
    ]
    con.close()


def test_rows_counted_by_the_copy_are_the_files(tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    duckdb.sql(f"COPY (SELECT range AS id FROM range(1234)) TO '{tmp_path / 'files' / 'a.csv'}'")
    connector = FilesConnector(SourceContext("files", {"path": str(tmp_path / "files")}, tmp_path))
    writer = ExtractWriter(tmp_path / "extracts", "files")
    published = connector.extract(TableRequest(id="a", source_table="a.csv"), writer)
    assert published.rows == published.files[0].rows == 1234
    assert pq.read_metadata(writer.paths.table_file("a")).num_rows == 1234
    assert read_extract(writer.paths, strict=True).tables["a"].rows == 1234


def test_the_metadata_waits_for_the_folder_to_be_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = ExtractWriter(tmp_path / "extracts", "src")
    writer.publish_file("orders", _staged(writer, "orders", 3), description="first")

    def failing(path: Path) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(atomic, "fsync_dir", failing)
    with pytest.raises(OSError, match="disk gone"):
        writer.publish_file("orders", _staged(writer, "orders", 5), description="second")
    monkeypatch.undo()
    # The file was renamed (as before this change, when the folder's fsync failed after
    # the rename), but the metadata naming it was never committed.
    con = duckdb.connect(str(writer.paths.db), read_only=True)
    assert con.execute("SELECT description FROM _meta").fetchall() == [("first",)]
    con.close()
    attached = attach_host.WRITER.cursor().execute("SELECT database_name FROM duckdb_databases()")
    assert [r[0] for r in attached.fetchall() if r[0].startswith("attached_")] == []


def test_a_replaced_file_leaves_nothing_behind(tmp_path: Path) -> None:
    writer = ExtractWriter(tmp_path / "extracts", "src")
    for n in (3, 4, 5):
        writer.publish_file("orders", _staged(writer, "orders", n), description=f"run {n}")
    assert sorted(p.name for p in writer.paths.data.iterdir()) == ["orders.parquet"]
    assert pq.read_metadata(writer.paths.table_file("orders")).num_rows == 5
    assert read_extract(writer.paths, strict=True).tables["orders"].rows == 5


def test_a_failed_rename_keeps_the_old_file_and_no_second_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = ExtractWriter(tmp_path / "extracts", "src")
    writer.publish_file("orders", _staged(writer, "orders", 3), description="d")
    staged = _staged(writer, "orders", 4)

    def failing(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic, "publish", failing)
    with pytest.raises(OSError, match="disk full"):
        writer.publish_file("orders", staged, description="d")
    monkeypatch.undo()
    left = sorted(p.name for p in writer.paths.data.iterdir())
    assert left == sorted(["orders.parquet", staged.name])  # the caller's staged file only
    assert pq.read_metadata(writer.paths.table_file("orders")).num_rows == 3
    assert read_extract(writer.paths, strict=True).tables["orders"].rows == 3


def test_a_file_set_aside_is_swept_if_the_writer_dies(tmp_path: Path) -> None:
    writer = ExtractWriter(tmp_path / "extracts", "src")
    writer.publish_file("orders", _staged(writer, "orders", 3), description="d")
    aside = atomic.set_aside(writer.paths.table_file("orders"))  # as a killed publish leaves it
    assert aside is not None and aside.is_file()
    assert writer.sweep("orders") == 1
    assert not aside.exists() and writer.paths.table_file("orders").is_file()
    assert atomic.set_aside(writer.paths.table_file("missing")) is None


def test_work_beside_gives_its_result_or_its_error(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"x" * 10)
    assert atomic.fsync_file_while(target, lambda p: p.stat().st_size) == 10

    def broken(path: Path) -> int:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        atomic.fsync_file_while(target, broken)
    with atomic.Beside(atomic.fsync_file, tmp_path / "absent") as missing:
        pass
    with pytest.raises(FileNotFoundError):
        missing.result()
