"""Tables a caller brings to a local query besides the catalog's: their snapshots and the
results kept from earlier calls (``result_<id>``).

They are resolved by the rails like catalog tables (unqualified names only; a catalog
table of the same name wins) and registered on the query's own cursor just before it
runs, as Arrow data or a parquet dataset read through pyarrow: the locked sandbox never
gains a file path, and nothing registered outlives the cursor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from agnes_mcp.rails.tables import CatalogTable


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
            cursor.register(extra.name, source)

    return register
