"""Tables a caller brings to a local query besides the catalog's: their snapshots and the
results kept from earlier calls (``result_<id>``).

They are resolved by the rails like catalog tables (unqualified names only; a catalog
table of the same name wins) and registered on the query's own cursor just before it
runs, as Arrow data or a parquet dataset read through pyarrow: the locked sandbox never
gains a file path, and nothing registered outlives the cursor.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from agnes_mcp.rails.answer_stream import DUCKDB_TYPE
from agnes_mcp.rails.tables import CatalogTable
from agnes_sync.sql_text import quote_ident

# A DuckDB type as DuckDB names one (letters, digits, spaces, commas, brackets, quotes of
# struct fields): anything else in a kept result's metadata is not put into SQL.
_TYPE_NAME = re.compile(r"[A-Za-z0-9_ ,()\[\]\"]+")


@dataclass(frozen=True)
class ExtraTable:
    name: str
    kind: str  # snapshot | result
    source: str  # where the rows came from (a table id, or the query that made them)
    created_at: dt.datetime | None
    data: pa.Table | Path

    def as_catalog_table(self) -> CatalogTable:
        rows = self.data.num_rows if isinstance(self.data, pa.Table) else None
        return CatalogTable(
            id=self.name,
            description="",
            query_mode=self.kind,
            source=self.source,
            rows=rows,
            size_bytes=None,
            extracted_at=self.created_at,
        )


Extras = Mapping[str, ExtraTable]


def kept_description(kind: str, source: str) -> str:
    """What ``schema`` says a kept result or snapshot is."""
    if kind == "result":
        return "A result kept from an earlier query; it goes when unused for a while."
    return f"A snapshot of {source}."


def registrar(
    extras: Extras, tables: Sequence[CatalogTable]
) -> Callable[[duckdb.DuckDBPyConnection], None] | None:
    """A ``prepare`` step registering the extras among the planned ``tables`` (None if
    none): only those, so an extra never shadows a catalog table the plan reads."""
    wanted = [extras[t.id] for t in tables if t.id in extras and t.query_mode == extras[t.id].kind]
    if not wanted:
        return None

    def register(cursor: duckdb.DuckDBPyConnection) -> None:
        for extra in wanted:
            data = extra.data
            if isinstance(data, Path):
                import pyarrow.dataset as pads  # loads pandas: only when a folder is given

                source = pads.dataset(str(data))
            else:
                source = data
            retyped = retyped_columns(source.schema)
            if not retyped:
                cursor.register(extra.name, source)
                continue
            # registered under a hidden name, read through a view that gives the columns
            # their DuckDB types back (the query's transaction, rolled back, drops both)
            hidden = f"agnes_kept_{secrets.token_hex(8)}"
            cursor.register(hidden, source)
            cursor.execute(
                f"CREATE TEMP VIEW {quote_ident(extra.name)} AS "
                f"{retyped_select(f'SELECT * FROM {quote_ident(hidden)}', retyped)}"
            )

    return register


def retyped_columns(schema: pa.Schema) -> list[tuple[str, str]]:
    """(name, DuckDB type) of the columns an answer marked as not of their DuckDB type
    in Arrow (:data:`~agnes_mcp.rails.answer_stream.DUCKDB_TYPE`): a HUGEINT is an Arrow
    decimal128(38, 0) and would come back a DECIMAL(38, 0), whose arithmetic overflows
    on its 39-digit values; a UHUGEINT, a TIMETZ or a BIT would come back as text."""
    found = []
    for field in schema:
        kind = (field.metadata or {}).get(DUCKDB_TYPE)
        if kind is not None and _TYPE_NAME.fullmatch(kind.decode()):
            found.append((field.name, kind.decode()))
    return found


def retyped_select(select: str, retyped: list[tuple[str, str]]) -> str:
    """``select`` (``SELECT * FROM ...``) with the ``retyped`` columns cast back."""
    casts = ", ".join(f"CAST({quote_ident(n)} AS {t}) AS {quote_ident(n)}" for n, t in retyped)
    return select.replace("SELECT *", f"SELECT * REPLACE ({casts})", 1)
