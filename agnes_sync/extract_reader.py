"""Reading and validating an extract: every problem is reported, exactly.

A problem names the extract, the object (table, view, column, file) and what is
wrong with it. Views may read only parquet files inside the extract's own ``data/``
folder (local tables) or tables of an attached alias (remote tables), and ``_files`` may
list only files there, so an extract can never expose arbitrary files of the server as a
table or a download.

:func:`moved_view` re-points a view written before its data dir was copied or restored
elsewhere (see :meth:`agnes_sync.orchestrator.Orchestrator.relocate`).
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import sqlglot
from sqlglot import exp

from agnes_sync.contract import QUERY_MODES, ExtractPaths
from agnes_sync.errors import ExtractInvalid
from agnes_sync.printable import printable
from agnes_sync.sql_text import quote_literal

META_COLUMNS = {
    "table_name": "VARCHAR",
    "description": "VARCHAR",
    "rows": "BIGINT",
    "size_bytes": "BIGINT",
    "extracted_at": "TIMESTAMP WITH TIME ZONE",
    "query_mode": "VARCHAR",
}
# ``engine`` was called ``extension`` before 0.1; older extracts are still read.
ATTACH_COLUMNS = ("alias", "engine", "url", "token_env")
LEGACY_ENGINE_COLUMN = "extension"
GLOB_CHARS = "*?["


@dataclass(frozen=True)
class ExtractFile:
    path: Path  # absolute
    part: str | None
    rows: int | None
    size_bytes: int | None
    content_hash: str | None


@dataclass(frozen=True)
class RemoteRef:
    alias: str
    engine: str
    url: str
    token_env: str | None
    remote_name: str


@dataclass
class ExtractTable:
    name: str
    description: str
    rows: int | None
    size_bytes: int | None
    extracted_at: datetime | None
    query_mode: str
    view_sql: str | None
    select_sql: str | None = None  # the view's query, re-rendered by sqlglot after validation
    files: list[ExtractFile] = field(default_factory=list)
    remote: RemoteRef | None = None
    incomplete: str | None = None  # why its rows are not all there are yet (_incomplete)


@dataclass
class Extract:
    source: str
    paths: ExtractPaths
    tables: dict[str, ExtractTable] = field(default_factory=dict)
    attachments: dict[str, RemoteRef] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems


def read_extract(
    paths: ExtractPaths, *, strict: bool = False, con: duckdb.DuckDBPyConnection | None = None
) -> Extract:
    """Read ``paths``' extract; tables with problems are left out and the problems listed.

    The extract is ATTACHed read-only to ``con`` (a fresh in-memory connection if none is
    given; attaching is ~10x cheaper than opening a connection per extract). With
    ``strict``, any problem raises :class:`ExtractInvalid` listing them all.
    """
    extract = Extract(source=paths.source, paths=paths)
    where = f"extract '{paths.source}' ({paths.db})"
    own = con is None
    reader = con if con is not None else duckdb.connect()
    alias = f"_extract_{secrets.token_hex(4)}"
    try:
        if not paths.db.is_file():
            extract.problems.append(f"{where}: extract.duckdb is missing")
        else:
            try:
                reader.execute(f"ATTACH {quote_literal(str(paths.db))} AS {alias} (READ_ONLY)")
            except duckdb.Error as exc:
                extract.problems.append(f"{where}: cannot be opened: {str(exc).splitlines()[0]}")
            else:
                try:
                    _read(reader, alias, extract, where)
                finally:
                    reader.execute(f"DETACH {alias}")
    finally:
        if own:
            reader.close()
    if strict and extract.problems:
        raise ExtractInvalid(
            f"The {where} breaks the extract contract: " + "; ".join(extract.problems),
            hint="Re-run the source's sync; if it persists, the connector writes a bad extract.",
            details={"problems": extract.problems},
        )
    return extract


def _contract_columns(con: duckdb.DuckDBPyConnection, alias: str) -> dict[str, dict[str, str]]:
    """Columns of the contract tables present in the extract, in one catalog query."""
    rows = con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = ? AND schema_name = 'main' AND table_name IN "
        "('_meta', '_remote_attach', '_files', '_remote_tables', '_incomplete')",
        [alias],
    ).fetchall()
    found: dict[str, dict[str, str]] = {}
    for table, column, kind in rows:
        found.setdefault(table, {})[column] = kind
    return found


def _read(con: duckdb.DuckDBPyConnection, alias: str, extract: Extract, where: str) -> None:
    contract = _contract_columns(con, alias)
    meta_columns = contract.get("_meta")
    if meta_columns is None:
        extract.problems.append(f"{where}: table _meta is missing")
        return
    for name, kind in META_COLUMNS.items():
        if name not in meta_columns:
            extract.problems.append(f"{where}: _meta has no column '{name}' ({kind})")
        elif meta_columns[name] != kind:
            extract.problems.append(
                f"{where}: _meta.{name} is {meta_columns[name]}, expected {kind}"
            )
    if extract.problems:
        return

    attach_columns = dict(contract.get("_remote_attach", {}))
    engine_column = "engine"
    if LEGACY_ENGINE_COLUMN in attach_columns and "engine" not in attach_columns:
        engine_column = LEGACY_ENGINE_COLUMN
        attach_columns["engine"] = attach_columns[LEGACY_ENGINE_COLUMN]
    if attach_columns and set(ATTACH_COLUMNS) - set(attach_columns):
        missing = ", ".join(sorted(set(ATTACH_COLUMNS) - set(attach_columns)))
        extract.problems.append(f"{where}: _remote_attach lacks column(s) {missing}")
        attach_columns = {}
    attachments = {}
    if attach_columns:
        for name, engine, url, token_env in con.execute(
            f"SELECT alias, {engine_column}, url, token_env FROM {alias}._remote_attach"
        ).fetchall():
            attachments[name] = (engine, url, token_env)

    views = dict(
        con.execute(
            "SELECT view_name, sql FROM duckdb_views() "
            "WHERE database_name = ? AND NOT internal AND schema_name = 'main'",
            [alias],
        ).fetchall()
    )
    remote_names = {}
    if "_remote_tables" in contract:
        remote_names = {
            t: (remote_alias, name)
            for t, remote_alias, name in con.execute(
                f"SELECT table_name, alias, remote_name FROM {alias}._remote_tables"
            ).fetchall()
        }
    files: dict[str, list[ExtractFile]] = {}
    if "_files" in contract:
        for table, path, part, rows, size, digest in con.execute(
            "SELECT table_name, path, part, rows, size_bytes, content_hash "
            f"FROM {alias}._files ORDER BY path"
        ).fetchall():
            files.setdefault(table, []).append(
                ExtractFile(extract.paths.root / path, part, rows, size, digest)
            )

    incomplete: dict[str, str] = {}
    if {"table_name", "why"} <= set(contract.get("_incomplete", {})):  # optional
        incomplete = dict(
            con.execute(f"SELECT table_name, why FROM {alias}._incomplete").fetchall()
        )
    meta = con.execute(
        "SELECT table_name, description, rows, size_bytes, extracted_at, query_mode "
        f"FROM {alias}._meta ORDER BY table_name"
    ).fetchall()
    for name, description, rows, size, extracted_at, mode in meta:
        table = ExtractTable(
            name, description or "", rows, size, extracted_at, mode, views.get(name)
        )
        table.incomplete = _said(incomplete.get(name))
        problems = _check_table(extract, table, where, attachments, remote_names, files)
        if problems:
            extract.problems.extend(problems)
        else:
            extract.tables[name] = table
    for view in sorted(set(views) - {row[0] for row in meta}):
        extract.problems.append(f"{where}: view '{view}' has no _meta row")


def _said(why: object) -> str | None:
    """An ``_incomplete`` reason as the answers repeat it: one line of printable text,
    at most 500 characters (a connector's words, not a place for anything else)."""
    if not isinstance(why, str) or not why.strip():
        return None
    line = " ".join(printable(why).split())
    return line if len(line) <= 500 else line[:499] + "…"


def _check_table(
    extract: Extract,
    table: ExtractTable,
    where: str,
    attachments: dict[str, tuple[str, str, str | None]],
    remote_names: dict[str, tuple[str, str]],
    files: dict[str, list[ExtractFile]],
) -> list[str]:
    at = f"{where}, table '{table.name}'"
    if table.query_mode not in QUERY_MODES:
        return [f"{at}: query_mode '{table.query_mode}' is not one of {', '.join(QUERY_MODES)}"]
    if table.query_mode == "remote":
        ref = remote_names.get(table.name)
        if ref is None:
            return [f"{at}: remote table has no _remote_tables row"]
        alias, remote_name = ref
        if alias not in attachments:
            return [f"{at}: alias '{alias}' is not in _remote_attach"]
        engine, url, token_env = attachments[alias]
        table.remote = RemoteRef(alias, engine, url, token_env, remote_name)
        extract.attachments[alias] = RemoteRef(alias, engine, url, token_env, "")
        return []
    if table.view_sql is None:
        return [f"{at}: no view named '{table.name}'"]
    select_sql, view_problems = _check_view(table.view_sql, extract.paths.data)
    problems = [f"{at}: {p}" for p in view_problems]
    table.select_sql = select_sql
    table.files = files.get(table.name, [])
    root = extract.paths.data.resolve()
    for item in table.files:
        if ".." in item.path.parts or not item.path.resolve().is_relative_to(root):
            problems.append(f"{at}: file {item.path} is listed in _files but outside {root}")
        elif not item.path.is_file():
            problems.append(f"{at}: file {item.path} is listed in _files but missing")
        elif item.size_bytes is not None and item.path.stat().st_size != item.size_bytes:
            problems.append(
                f"{at}: file {item.path} is {item.path.stat().st_size} bytes, "
                f"_files says {item.size_bytes}"
            )
    return problems


def _check_view(sql: str, data_dir: Path) -> tuple[str | None, list[str]]:
    """A local view may only read parquet files inside the extract's data folder.

    Returns the view's query (rendered by sqlglot) and the problems found."""
    try:
        tree = sqlglot.parse_one(sql, dialect="duckdb")
    except sqlglot.errors.ParseError as exc:
        return None, [f"view SQL does not parse: {str(exc).splitlines()[0]}"]
    if not isinstance(tree, exp.Create) or not isinstance(tree.expression, exp.Query):
        return None, ["view SQL is not a CREATE VIEW ... AS SELECT"]
    problems = []
    root = data_dir.resolve()
    for source in tree.expression.find_all(exp.Table):
        reader = source.this
        if not isinstance(reader, exp.ReadParquet):
            problems.append(f"view reads '{source.sql('duckdb')}', not read_parquet(...)")
            continue
        for path in _literal_paths(reader):
            if path is None:
                problems.append("read_parquet() takes a non-literal path")
            elif not _inside(path, root):
                problems.append(f"view reads {path}, outside {root}")
    for func in tree.expression.find_all(exp.Func):
        if isinstance(func, exp.ReadParquet):
            continue
        name = func.sql_name().lower() if not isinstance(func, exp.Anonymous) else func.name.lower()
        if name.startswith("read_") or name in ("glob", "getenv", "query", "query_table"):
            problems.append(f"view calls {name}(), which reaches outside the extract")
    return tree.expression.sql(dialect="duckdb"), problems


def moved_view(sql: str, paths: ExtractPaths) -> tuple[str, set[str]] | None:
    """``sql`` (a view of ``paths``' extract) re-pointed at this extract, if it reads the
    same extract at another place: ``<old data dir>/extracts/<source>/data/<rest>``.

    Returns the view's new query and the old data dirs it named, or ``None`` when there is
    nothing to move: the view already reads here, or reads something a move cannot
    explain (another extract, a path climbing out with ``..``), which the validation then
    reports as it always did. Only the prefix changes, so a moved view passes the same
    check as any other."""
    try:
        tree = sqlglot.parse_one(sql, dialect="duckdb")
    except sqlglot.errors.ParseError:
        return None
    if not isinstance(tree, exp.Create) or not isinstance(tree.expression, exp.Query):
        return None
    data = paths.data.resolve()
    marker = f"/{paths.root.parent.name}/{paths.source}/{data.name}/"
    old_dirs: set[str] = set()
    for reader in tree.expression.find_all(exp.ReadParquet):
        for literal in _literals(reader):
            if literal is None or _inside(literal.this, data):
                continue  # a non-literal path is the validation's to report
            path: str = literal.this
            at = path.rfind(marker)
            rest = path[at + len(marker) :] if at >= 0 else ""
            moved = f"{data}/{rest}"
            if not rest or not _inside(moved, data):
                return None
            literal.replace(exp.Literal.string(moved))
            old_dirs.add(path[:at])
    if not old_dirs:
        return None
    return tree.expression.sql(dialect="duckdb"), old_dirs


def _literals(reader: exp.ReadParquet) -> list[exp.Literal | None]:
    first = reader.this if reader.this is not None else None
    if first is None and reader.expressions:
        first = reader.expressions[0]
    candidates = first.expressions if isinstance(first, exp.Array) else [first]
    return [c if isinstance(c, exp.Literal) and c.is_string else None for c in candidates]


def _literal_paths(reader: exp.ReadParquet) -> list[str | None]:
    return [c.this if c is not None else None for c in _literals(reader)]


def _inside(path: str, root: Path) -> bool:
    if ".." in Path(path).parts:
        return False
    fixed = path
    for char in GLOB_CHARS:
        fixed = fixed.split(char, 1)[0]
    candidate = Path(fixed)
    if not candidate.is_absolute() or ".." in candidate.parts:
        return False
    with contextlib.suppress(ValueError):
        candidate.resolve().relative_to(root)
        return True
    return False
