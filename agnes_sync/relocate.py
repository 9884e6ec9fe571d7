"""Serving a data dir from where it is after it was copied, moved or restored.

Extracts record absolute paths (their views, ``_files``, a DuckDB warehouse kept in the
data dir): after a move they are re-pointed here, each extract in one transaction under
its lock and only where the new view binds, by :meth:`agnes_sync.orchestrator.
Orchestrator.relocate`, which then rebuilds the analytics DB and records the new place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from agnes_sync.contract import ExtractPaths, ExtractWriter
from agnes_sync.extract_reader import moved_view
from agnes_sync.locks import lock_for
from agnes_sync.sql_text import quote_ident, quote_literal


@dataclass
class Relocation:
    """What :meth:`Orchestrator.relocate` re-pointed when the data dir had moved."""

    data_dir: str
    moved_from: list[str]  # the data dirs the extracts and the analytics DB named
    views: int = 0  # extract views re-pointed
    files: int = 0  # absolute ``_files`` paths made relative to their extract
    attachments: int = 0  # remote attachments to a file in the data dir (a DuckDB warehouse)
    problems: list[str] = field(default_factory=list)  # views left as they were


@dataclass
class _Move:
    """One extract's planned move: new view queries, ``_files`` and attach rewrites."""

    views: dict[str, str] = field(default_factory=dict)
    files: list[tuple[str, str, str]] = field(default_factory=list)  # table, old, new path
    urls: dict[str, str] = field(default_factory=dict)  # alias -> new url
    old_dirs: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.views or self.files or self.urls)


def move_extract(
    reader: duckdb.DuckDBPyConnection,
    paths: ExtractPaths,
    here: Path,
    old_dirs: set[str],
    relocation: Relocation,
) -> None:
    """Re-point one extract to the data dir ``here`` under its lock, or record why it was
    left as it was."""
    with lock_for(paths.db):
        try:
            move = plan_move(reader, paths, here, old_dirs)
            if move:
                _write_move(paths, move, relocation)
        except (duckdb.Error, OSError) as exc:  # e.g. open in another process: unchanged
            relocation.problems.append(
                f"extract '{paths.source}' was not re-pointed: {str(exc).splitlines()[0]}"
            )
            return
    relocation.views += len(move.views)
    relocation.files += len(move.files)
    relocation.attachments += len(move.urls)


def _write_move(paths: ExtractPaths, move: _Move, relocation: Relocation) -> None:
    """Apply ``move`` in one transaction, views only where they bind here."""
    with ExtractWriter(paths.root.parent, paths.source).connect() as con:
        for name, select in list(move.views.items()):
            try:
                con.execute(f"DESCRIBE {select}")
            except duckdb.Error as exc:
                del move.views[name]
                relocation.problems.append(
                    f"extract '{paths.source}', table '{name}': its view was not "
                    f"re-pointed, {str(exc).splitlines()[0]}"
                )
        con.begin()
        for name, select in move.views.items():
            con.execute(f"CREATE OR REPLACE VIEW {quote_ident(name)} AS {select}")
        for table, old, new in move.files:
            con.execute(
                "UPDATE _files SET path = ? WHERE table_name = ? AND path = ?",
                [new, table, old],
            )
        for alias, url in move.urls.items():
            con.execute("UPDATE _remote_attach SET url = ? WHERE alias = ?", [url, alias])
        con.commit()


def plan_move(
    reader: duckdb.DuckDBPyConnection, paths: ExtractPaths, here: Path, old_dirs: set[str]
) -> _Move:
    """What moving ``paths``' extract to the data dir ``here`` takes (remote attachments
    under one of ``old_dirs`` follow); read through a read-only ATTACH."""
    move = _Move()
    if not paths.db.is_file():
        return move
    alias = "_agnes_moving"
    reader.execute(f"ATTACH {quote_literal(str(paths.db))} AS {alias} (READ_ONLY)")
    try:
        for name, sql in reader.execute(
            "SELECT view_name, sql FROM duckdb_views() "
            "WHERE database_name = ? AND NOT internal AND schema_name = 'main'",
            [alias],
        ).fetchall():
            moved = moved_view(sql, paths)
            if moved is not None:
                move.views[name] = moved[0]
                move.old_dirs |= moved[1]
        tables = {
            r[0]
            for r in reader.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [alias]
            ).fetchall()
        }
        root = str(paths.root.resolve())
        marker = f"/{paths.root.parent.name}/{paths.source}/"
        if "_files" in tables:
            for table, path in reader.execute(
                f"SELECT table_name, path FROM {alias}._files"
            ).fetchall():
                at = path.rfind(marker)
                if at < 0 or not Path(path).is_absolute() or path.startswith(root + "/"):
                    continue
                relative = path[at + len(marker) :]
                if ".." in Path(relative).parts:
                    continue  # the validation reports it
                move.files.append((table, path, relative))
                move.old_dirs.add(path[:at])
        if "_remote_attach" in tables:
            for name, url in reader.execute(
                f"SELECT alias, url FROM {alias}._remote_attach"
            ).fetchall():
                old = next((d for d in old_dirs if str(url).startswith(d + "/")), None)
                if old is not None:
                    move.urls[name] = f"{here}{str(url)[len(old) :]}"
    finally:
        reader.execute(f"DETACH {alias}")
    return move
