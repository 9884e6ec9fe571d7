"""The sandbox's views: one per table, read natively from in-memory copies of its files
(:mod:`file_copies`), or through an Arrow dataset where no copy can be made
(:mod:`arrow_sources`).

A native view is ``read_parquet([...], hive_partitioning = false)`` over the copies:
DuckDB's own types (UUID, JSON, INTERVAL), footers cached between queries
(``parquet_metadata_cache``), ``count(*)`` answered from the footers. Files of one table
with differing columns are read by name (``union_by_name``, as the orchestrator's views
read them); where every file has the same parquet schema, as a sync writes them, that
changes nothing but costs ~3.5 ms a query on the demo's 34 files of orders (every
footer is read again to bind), so it is asked for only where the schemas differ.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb

from agnes_mcp.rails.arrow_sources import ArrowSource, TableUnavailable, open_source
from agnes_mcp.rails.extra_tables import retyped_columns, retyped_select
from agnes_mcp.rails.file_copies import Lease, NativeFiles
from agnes_mcp.rails.tables import CatalogTable
from agnes_sync.sql_text import quote_ident, quote_literal

if TYPE_CHECKING:
    from agnes_mcp.rails.native_tables import NativeTables

CONVERTED_TABLE = "t"  # the one table of a converted file (native_tables)


@dataclass
class Views:
    """What the views of one sandbox read: Arrow sources to register on each cursor (by
    lower-case table id), copies to release when the sandbox closes, and the files DuckDB
    may open (``allowed_paths``)."""

    sources: dict[str, ArrowSource] = field(default_factory=dict)
    leases: list[Lease] = field(default_factory=list)
    # tables left without a view, their files unreadable (by lower-case id): the refusal
    unreadable: dict[str, str] = field(default_factory=dict)
    allowed: list[str] = field(default_factory=list)
    attached: int = 0  # tables read from their converted DuckDB files

    def release(self) -> None:
        for lease in self.leases:
            lease.release()
        self.leases = []


def create_views(
    con: duckdb.DuckDBPyConnection,
    tables: list[CatalogTable],
    copies: NativeFiles | None,
    natives: NativeTables | None = None,
) -> Views:
    """One view per table with files on ``con`` (not yet locked): over the table's
    converted DuckDB file where ``natives`` has it ready, else over its parquet files. A
    table whose files cannot be read (a damaged file) gets none and is listed in
    ``unreadable``: a query of it is refused (:func:`refuse_unreadable`), the others run."""
    views = Views()
    try:
        for table in tables:
            if not table.files:
                continue
            converted = natives.path(table) if natives is not None else None
            if converted is None or not _attach(con, table, converted, views):
                try:
                    _create_view(con, table, copies, views)
                except TableUnavailable as exc:
                    views.unreadable[table.id.lower()] = exc.message
    except BaseException:
        views.release()
        raise
    return views


def native_select(paths: list[str], *, by_name: bool) -> str:
    listed = ", ".join(quote_literal(p) for p in paths)
    options = "union_by_name = true, " if by_name else ""
    return f"SELECT * FROM read_parquet([{listed}], {options}hive_partitioning = false)"


def same_schema(con: duckdb.DuckDBPyConnection, paths: list[str]) -> bool:
    """Whether every file at ``paths`` has the same parquet schema (names, order, types,
    repetition, logical types): then reading them by position is reading them by name."""
    if len(paths) < 2:
        return True
    listed = ", ".join(quote_literal(p) for p in paths)
    rows = con.execute(
        "SELECT file_name, list((name, type, type_length, repetition_type, num_children, "
        "converted_type, scale, precision, field_id, logical_type, duckdb_type) "
        f"ORDER BY column_id) FROM parquet_schema([{listed}]) GROUP BY file_name"
    ).fetchall()
    return len(rows) == len(set(paths)) and len({str(r[1]) for r in rows}) == 1


def _create_view(
    con: duckdb.DuckDBPyConnection, table: CatalogTable, copies: NativeFiles | None, views: Views
) -> None:
    lease = _lease(table, copies)
    if lease is not None:
        try:  # reading the footers here refuses a damaged file before any query
            select = native_select(lease.paths, by_name=not same_schema(con, lease.paths))
            if table.query_mode == "result":  # a kept answer: its columns' own types
                select = _kept_types(select, table.files)
            con.execute(f"CREATE VIEW {quote_ident(table.id)} AS {select}")
        except duckdb.OutOfMemoryException:
            lease.release()  # the process is short of memory: the file is not to blame
            raise
        except duckdb.Error:
            lease.release()  # no view reads these copies
            raise _unavailable(table, "unreadable parquet") from None
        except BaseException:
            lease.release()
            raise
        views.leases.append(lease)
        views.allowed.extend(lease.paths)
        return
    source = open_source(table, f"__agnes_source_{len(views.sources)}")
    con.register(source.name, source.dataset)  # bound once, to create the view
    con.execute(f"CREATE VIEW {quote_ident(table.id)} AS {source.select}")
    con.unregister(source.name)
    views.sources[table.id.lower()] = source


def _kept_types(select: str, files: Iterable[str]) -> str:
    """``select`` over a kept result's file, its columns that are not in parquet of their
    DuckDB type (a HUGEINT, a UHUGEINT: :func:`extra_tables.retyped_columns`, from the
    Arrow schema the file holds) cast back to it."""
    import pyarrow.parquet as pq

    retyped = [c for f in files for c in retyped_columns(pq.read_schema(f))]
    return retyped_select(select, retyped) if retyped else select


def _attach(con: duckdb.DuckDBPyConnection, table: CatalogTable, path: str, views: Views) -> bool:
    """A view over ``table``'s converted file, attached read-only (False if that fails:
    the file was removed meanwhile, and the parquet files are read instead)."""
    alias = f"agnes_native_{views.attached}"
    try:
        con.execute(f"ATTACH {quote_literal(path)} AS {alias} (READ_ONLY)")
    except duckdb.Error:
        return False
    views.attached += 1
    con.execute(
        f"CREATE VIEW {quote_ident(table.id)} AS SELECT * FROM {alias}.main.{CONVERTED_TABLE}"
    )
    return True


def _lease(table: CatalogTable, copies: NativeFiles | None) -> Lease | None:
    if copies is None:
        return None
    try:
        return copies.lease(table.files)
    except OSError as exc:
        raise _unavailable(table, type(exc).__name__) from None


def _unavailable(table: CatalogTable, why: str) -> TableUnavailable:
    return TableUnavailable(
        f"The data of table '{table.id}' cannot be read right now ({why}).",
        details={"table": table.id},
    )


def refuse_unreadable(unreadable: dict[str, str], reads: Iterable[CatalogTable]) -> None:
    """Refuse a query that reads a table left without a view (its files unreadable)."""
    for table in reads:
        said = unreadable.get(table.id.lower())
        if said is not None:
            raise TableUnavailable(said, details={"table": table.id})
