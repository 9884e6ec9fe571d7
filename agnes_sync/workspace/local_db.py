"""The workspace's DuckDB file (``.agnes/agnes.duckdb``): one view per pulled table,
snapshot and kept result, for notebooks and the analyst's own DuckDB tools.

It is rebuilt aside and renamed into place, so a reader sees the old file or the new one.
Agents do not query it directly: their SQL runs in a locked sandbox built from the same
inventory (:mod:`agnes_mcp.query.workspace_query`).

Each view carries a fingerprint of what it was made from (its files, and each file's
identity: inode, size, modification time) as the alias of its ``read_parquet`` (which
names no column; a comment would cost a catalog change per view). A rebuild starts from a copy
of the previous file and creates only the views whose fingerprint changed, and drops the
ones no longer on disk: creating a view reads its files' parquet footers (~0.5 ms a
view), so a workspace of 1,000 tables was ~0.5 s on every pull, snapshot or notebook
connection that changed anything, and is now what changed. A file that holds anything
else than views so marked (someone's own table, an older file) is built afresh, as every
file was before.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import duckdb

from agnes_sync import atomic
from agnes_sync.sql_text import quote_ident, quote_literal
from agnes_sync.workspace.inventory import Inventory, read_inventory
from agnes_sync.workspace.layout import WorkspacePaths

MARK = "agnes_view_"  # the alias's prefix; the fingerprint follows
_MARKED = re.compile(r'AS "?agnes_view_([0-9a-f]{32})"?;?\s*$')


def view_sql(name: str, files: tuple[Path, ...] | list[Path], mark: str = "") -> str:
    listing = "[" + ", ".join(quote_literal(str(f)) for f in files) + "]"
    alias = f" AS {quote_ident(MARK + mark)}" if mark else ""
    return (
        f"CREATE OR REPLACE VIEW {quote_ident(name)} AS SELECT * FROM read_parquet({listing}, "
        f"union_by_name = true, hive_partitioning = false){alias}"
    )


def views(inventory: Inventory) -> dict[str, tuple[Path, ...]]:
    """Every queryable name and its files (a table's name wins over a snapshot's)."""
    found: dict[str, tuple[Path, ...]] = {}
    for name, path in inventory.results.items():
        found[name] = (path,)
    for name in inventory.snapshots:
        found[name] = (inventory.snapshot_root / f"{name}.parquet",)
    for table in inventory.tables.values():
        found[table.id] = table.files
    return found


def fingerprint(name: str, files: tuple[Path, ...]) -> str:
    """What a view is made from: its SQL and each file as it is now on disk (a file
    replaced by a rename is a new inode, so a new version always changes it)."""
    digest = hashlib.sha256(view_sql(name, files).encode())
    for path in files:
        try:
            stat = path.stat()
        except OSError:  # gone meanwhile: a fingerprint no view has, so it is made again
            digest.update(b"missing")
            continue
        digest.update(f"{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:32]


def rebuild(paths: WorkspacePaths) -> Inventory:
    """Make ``agnes.duckdb`` name exactly what is on disk; returns the inventory."""
    return Rebuild(paths).finish()


Wanted = dict[str, tuple[tuple[Path, ...], str]]


class Rebuild:
    """:func:`rebuild` begun early: a pull makes each table's view as soon as its files
    are in place (:meth:`early`, while the other files still arrive: creating a view
    reads its files' parquet footers, ~0.4 ms a view, and opening the file ~10 ms, which
    otherwise follow the last file), and :meth:`finish` then makes the file name exactly
    what is on disk, as a rebuild from scratch would. One thread at a time."""

    def __init__(self, paths: WorkspacePaths, staged: Path | None = None) -> None:
        """``staged``: where the new file is made (default: a name of its own); a
        caller that holds a lock may name one, so that what a killed run left there is
        made anew by the next (a leftover is overwritten, its log discarded)."""
        paths.ensure()
        self._paths = paths
        self._staged = staged or atomic.staging_path(paths.db)
        atomic.discard(Path(f"{self._staged}.wal"))
        self._early: dict[str, str] = {}  # views made early, in the open transaction
        self._con, self._found = self._copy()

    @classmethod
    def begun(cls, paths: WorkspacePaths, staged: Path | None = None) -> Rebuild | None:
        """One, or None when it cannot be begun now (the folder unwritable, say): the
        rebuild at the end then says why."""
        try:
            return cls(paths, staged)
        except (OSError, duckdb.Error):
            return None

    def _copy(self) -> tuple[duckdb.DuckDBPyConnection, dict[str, str] | None]:
        """A copy of the current file and its views; or, when there is no file, a
        write-ahead log beside it, anything in it not ours, or any error: a new file
        (``None``: it is published whatever it names)."""
        current = self._paths.db
        if current.is_file() and not Path(f"{current}.wal").exists():
            con: duckdb.DuckDBPyConnection | None = None
            try:
                shutil.copyfile(current, self._staged)
                con = duckdb.connect(str(self._staged))
                found = _marked_views(con)
                if found is not None:
                    return con, found
            except (OSError, duckdb.Error):
                pass
            if con is not None:
                con.close()
        return self._afresh(), None

    def _afresh(self) -> duckdb.DuckDBPyConnection:
        atomic.discard(self._staged)
        return duckdb.connect(str(self._staged))

    def early(self, name: str, files: tuple[Path, ...]) -> None:
        """Make ``name``'s view over ``files`` now (one transaction for all made early);
        one that fails (a file that does not read) undoes them, and :meth:`finish` makes
        them all as a rebuild would."""
        mark = fingerprint(name, files)
        if {**(self._found or {}), **self._early}.get(name) == mark:
            return
        if not self._early:
            self._con.begin()
        try:
            self._con.execute(view_sql(name, files, mark))
        except duckdb.Error:
            self._con.rollback()
            self._early.clear()
            return
        self._early[name] = mark

    def finish(self) -> Inventory:
        """Make the file name what is on disk now and publish it (if anything changed);
        returns the inventory. The staged file is gone afterwards, either way."""
        try:
            inventory = read_inventory(self._paths)
            wanted = {
                name: (files, fingerprint(name, files)) for name, files in views(inventory).items()
            }
            changed = self._settle(wanted)
            self._con.close()
            if changed:
                # A log left beside the old file by a writer that died is not the new one's.
                atomic.discard(Path(f"{self._paths.db}.wal"))
                atomic.publish(self._staged, self._paths.db)
            return inventory
        finally:
            self.discard()

    def _settle(self, wanted: Wanted) -> bool:
        """Commit what was made early and make the rest; whether the file changed (a new
        file always has)."""
        try:
            if self._early:
                self._con.commit()
            made = _apply(self._con, wanted, {**(self._found or {}), **self._early})
            return made or bool(self._early) or self._found is None
        except duckdb.Error:
            if self._found is None:
                raise
        self._con.close()  # the copy cannot be brought up to date: afresh
        self._con = self._afresh()
        _apply(self._con, wanted, {})
        return True

    def discard(self) -> None:
        """Give up: the current file stays as it was."""
        try:
            self._con.close()
        finally:
            atomic.discard(self._staged)
            atomic.discard(Path(f"{self._staged}.wal"))


def _marked_views(con: duckdb.DuckDBPyConnection) -> dict[str, str] | None:
    """Our views and their fingerprints, or None if the file holds anything else."""
    here = "database_name = current_database()"
    mine = f"{here} AND NOT internal"
    others = con.execute(
        f"SELECT (SELECT count(*) FROM duckdb_tables() WHERE {mine})"
        f" + (SELECT count(*) FROM duckdb_sequences() WHERE {here})"
        f" + (SELECT count(*) FROM duckdb_functions() WHERE {mine})"
        f" + (SELECT count(*) FROM duckdb_types() WHERE {mine})"
        f" + (SELECT count(*) FROM duckdb_schemas() WHERE {mine} AND schema_name <> 'main')"
    ).fetchone()
    if others is None or others[0]:
        return None
    rows = con.execute(
        f"SELECT schema_name, view_name, sql FROM duckdb_views() WHERE {mine}"
    ).fetchall()
    have: dict[str, str] = {}
    for schema, name, sql in rows:
        marked = _MARKED.search(sql) if isinstance(sql, str) else None
        if schema != "main" or marked is None:
            return None
        have[str(name)] = marked.group(1)
    return have


def _apply(con: duckdb.DuckDBPyConnection, wanted: Wanted, have: dict[str, str]) -> bool:
    """Drop the views of ``have`` not wanted and make those whose fingerprint differs, in
    one transaction (one commit, not one per view: 50 views 34 ms, not 48); whether
    anything changed."""
    gone = set(have.keys() - wanted.keys())
    made = [(name, files, mark) for name, (files, mark) in wanted.items() if have.get(name) != mark]
    if not gone and not made:
        return False
    while True:
        making: str | None = None
        con.begin()
        try:
            for name in gone:
                con.execute(f"DROP VIEW {quote_ident(name)}")
            for name, files, mark in made:
                making = name
                con.execute(view_sql(name, files, mark))
            making = None
            con.commit()
            return True
        except duckdb.Error:
            con.rollback()
            if making is None:
                raise
        # A file that does not read as parquet (damaged, or changed by hand, and not
        # fetched again): that name gets no view until it reads, the others theirs.
        made = [m for m in made if m[0] != making]
        if making in have:
            gone.add(making)
