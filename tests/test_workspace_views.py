"""The workspace's DuckDB file: rebuilt from a copy of the last one, making only the views
whose files changed, and always naming exactly what is on disk."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from agnes_sync.workspace import local_db
from agnes_sync.workspace.layout import WorkspacePaths


def _write(path: Path, select: str) -> None:
    """A parquet file put in place by a rename, as a pull puts it."""
    staged = path.with_name(f".{path.name}.new")
    duckdb.execute(f"COPY ({select}) TO '{staged}' (FORMAT parquet)")
    os.replace(staged, path)


def _views(paths: WorkspacePaths) -> dict[str, list[str]]:
    con = duckdb.connect(str(paths.db), read_only=True)
    try:
        listed = con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        return {
            name: [d[0] for d in con.execute(f'SELECT * FROM "{name}" LIMIT 0').description]
            for (name,) in listed
        }
    finally:
        con.close()


@pytest.fixture
def paths(tmp_path: Path) -> WorkspacePaths:
    paths = WorkspacePaths(tmp_path / "ws")
    paths.ensure()
    for i in range(5):
        _write(paths.data / f"t{i}.parquet", f"SELECT range AS id, {i} AS v FROM range(3)")
    local_db.rebuild(paths)
    return paths


def test_a_changed_file_gets_a_new_view_the_rest_stay(paths: WorkspacePaths) -> None:
    _write(paths.data / "t2.parquet", "SELECT 'x' AS other, 7 AS more")  # a new schema
    local_db.rebuild(paths)
    views = _views(paths)
    assert views["t2"] == ["other", "more"]
    assert views["t1"] == ["id", "v"]
    con = duckdb.connect(str(paths.db), read_only=True)
    assert con.execute("SELECT * FROM t2").fetchall() == [("x", 7)]
    assert con.execute("SELECT count(*) FROM t4").fetchone() == (3,)
    con.close()


def test_new_and_removed_tables(paths: WorkspacePaths) -> None:
    (paths.data / "t0.parquet").unlink()
    _write(paths.data / "t9.parquet", "SELECT 1 AS a")
    local_db.rebuild(paths)
    assert sorted(_views(paths)) == ["t1", "t2", "t3", "t4", "t9"]


def test_nothing_changed_leaves_the_file_alone(paths: WorkspacePaths) -> None:
    before = paths.db.stat()
    local_db.rebuild(paths)
    after = paths.db.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_objects_not_ours_are_rebuilt_away(paths: WorkspacePaths) -> None:
    con = duckdb.connect(str(paths.db))
    con.execute("CREATE TABLE mine AS SELECT 1 AS a")
    con.execute("CREATE VIEW hand_made AS SELECT 2 AS b")
    con.close()
    local_db.rebuild(paths)
    assert sorted(_views(paths)) == ["t0", "t1", "t2", "t3", "t4"]
    con = duckdb.connect(str(paths.db), read_only=True)
    assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == (0,)
    con.close()


def test_a_damaged_file_is_built_afresh(paths: WorkspacePaths) -> None:
    paths.db.write_bytes(b"not a database" * 1000)
    local_db.rebuild(paths)
    assert sorted(_views(paths)) == ["t0", "t1", "t2", "t3", "t4"]


def test_a_file_with_a_write_ahead_log_is_built_afresh(paths: WorkspacePaths) -> None:
    wal = Path(f"{paths.db}.wal")
    wal.write_bytes(b"")
    _write(paths.data / "t3.parquet", "SELECT 5 AS five")
    local_db.rebuild(paths)
    assert not wal.exists()  # it was the old file's
    assert _views(paths)["t3"] == ["five"]


def _marks(paths: WorkspacePaths) -> dict[str, str]:
    con = duckdb.connect(str(paths.db), read_only=True)
    try:
        rows = con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal")
        return {name: sql.rsplit(local_db.MARK, 1)[1][:32] for name, sql in rows.fetchall()}
    finally:
        con.close()


def test_views_made_early_end_as_a_rebuild_makes_them(paths: WorkspacePaths) -> None:
    """A pull makes a table's view as its files land; what is published is what a rebuild
    from scratch makes of the disk at the end (a view made early over a file replaced
    since is made again; a table removed since loses its view)."""
    _write(paths.data / "t5.parquet", "SELECT 5 AS five")
    _write(paths.data / "t1.parquet", "SELECT 'one' AS one")
    early = local_db.Rebuild(paths)
    early.early("t5", (paths.data / "t5.parquet",))
    early.early("t1", (paths.data / "t1.parquet",))
    _write(paths.data / "t1.parquet", "SELECT 'again' AS again")  # replaced after
    (paths.data / "t3.parquet").unlink()
    early.finish()
    views = _views(paths)
    assert views["t5"] == ["five"]
    assert views["t1"] == ["again"]
    assert "t3" not in views
    built = _marks(paths)
    paths.db.unlink()
    local_db.rebuild(paths)
    assert _marks(paths) == built
    assert not list(paths.db.parent.glob(".*.tmp*"))


def test_a_file_that_does_not_read_leaves_the_early_views_to_the_end(paths: WorkspacePaths) -> None:
    """A file that does not read spoils the early transaction: the views made early are
    undone there, then all made at the end, the unreadable one left out."""
    _write(paths.data / "t7.parquet", "SELECT 7 AS seven")
    (paths.data / "t8.parquet").write_bytes(b"not parquet" * 10)
    early = local_db.Rebuild(paths)
    early.early("t7", (paths.data / "t7.parquet",))
    early.early("t8", (paths.data / "t8.parquet",))
    early.finish()
    views = _views(paths)
    assert views["t7"] == ["seven"]
    assert "t8" not in views
    assert sorted(views) == ["t0", "t1", "t2", "t3", "t4", "t7"]


def test_a_rebuild_given_up_leaves_the_file_and_nothing_else(paths: WorkspacePaths) -> None:
    before = paths.db.stat()
    staged = paths.db.with_name(".agnes.duckdb.pull.tmp")
    Path(f"{staged}.wal").write_bytes(b"a log a killed pull left")
    _write(paths.data / "t6.parquet", "SELECT 6 AS six")
    early = local_db.Rebuild(paths, staged)
    early.early("t6", (paths.data / "t6.parquet",))
    assert staged.exists()
    early.discard()
    after = paths.db.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert "t6" not in _views(paths)
    assert sorted(p.name for p in paths.db.parent.glob(".agnes.duckdb*")) == []
