"""A table's parquet files as an Arrow dataset the sandbox registers, instead of paths:
the way a sandbox reads a table when no in-memory copy of its files can be made
(:mod:`file_copies`: no ``memfd_create`` on the platform, or past the copies' budget).

A view ``SELECT * FROM read_parquet(['/srv/agnes-data/...'])`` carries the server's paths
in its text, and DuckDB would need them in ``allowed_paths`` (both readable through
``duckdb_views()``, ``pg_get_viewdef``, ``duckdb_settings()``). Here trusted code opens
the files as a ``pyarrow.dataset`` (DuckDB pushes projections and filters into it) and the
view reads a registered name. It is slower than DuckDB's own reader on the copies
(docs/query.md, Performance): on the demo's ``orders``, ``count(*)`` decodes a column
(~16 ms against ~2 ms) and a grouped scan costs ~1.5x.

Types follow DuckDB's own reading of the files: parquet ``UUID`` and ``JSON`` columns
become Arrow's uuid and json types (DuckDB's UUID and JSON), and ``INTERVAL`` (which
Arrow reads as 12 raw bytes) is decoded in the view. Files of one table with differing
columns are read by name, missing columns as NULL, as ``union_by_name`` does.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from agnes_mcp.rails.refusals import QueryRefused
from agnes_mcp.rails.tables import CatalogTable
from agnes_sync.sql_text import quote_ident

if TYPE_CHECKING:
    import pyarrow.dataset as ds  # imports pandas: only where a dataset is really opened

_INTERVAL = "__agnes_parquet_interval"


class TableUnavailable(QueryRefused):
    code = "table_unavailable"
    status = 503
    default_hint = (
        "The table's data is being replaced or is damaged: try again after its next sync."
    )


@functools.cache
def _dataset_class() -> Any:
    """A dataset whose scans read ahead little: DuckDB builds its scanner through
    ``type(dataset).scanner``, and Arrow's default (16 batches of 128k rows, 4 files
    ahead) decodes ~2M rows before ``SELECT * ... LIMIT 1000`` can stop it (150 ms on a
    10M-row table; 11 ms like this, while full scans keep their speed). Defined on first
    use: ``pyarrow.dataset`` loads pandas, ~100 ms that ``agnes query`` should not pay."""
    import pyarrow.dataset as ds

    class _Dataset(ds.FileSystemDataset):  # type: ignore[misc]
        def scanner(self, **options: object) -> ds.Scanner:
            options.setdefault("batch_readahead", 2)
            options.setdefault("fragment_readahead", 1)
            return ds.Scanner.from_dataset(self, **options)

    return _Dataset


@dataclass(frozen=True)
class ArrowSource:
    name: str  # the hidden name it is registered under
    dataset: ds.Dataset
    select: str  # the view's query over ``name``


def open_source(table: CatalogTable, name: str) -> ArrowSource:
    """``table``'s files as one dataset, typed as DuckDB would read them."""
    import pyarrow.dataset as ds

    try:
        files = [pq.ParquetFile(f) for f in table.files]
        try:
            schemas = [f.schema_arrow for f in files]
            kinds = _logical_kinds(files[0].schema)
        finally:
            for f in files:
                f.close()
        schema = pa.unify_schemas(schemas, promote_options="permissive")
        fields, strings, intervals = [], [], []
        for field in schema:
            kind = kinds.get(field.name)
            if kind == "UUID" and pa.types.is_fixed_size_binary(field.type):
                field = field.with_type(pa.uuid())
            elif kind == "JSON" and pa.types.is_string(field.type):
                field = field.with_type(pa.json_())
            elif kind == "INTERVAL":
                intervals.append(field.name)
            elif pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
                # read as dictionaries: ~10x faster to group on than plain strings
                field = field.with_type(pa.dictionary(pa.int32(), field.type))
                strings.append(field.name)
            fields.append(field)
        parquet = ds.ParquetFileFormat(
            read_options=ds.ParquetReadOptions(dictionary_columns=strings)
        )
        found = ds.dataset(list(table.files), schema=pa.schema(fields), format=parquet)
        dataset = _dataset_class()(
            list(found.get_fragments()), found.schema, parquet, found.filesystem
        )
    except (OSError, pa.ArrowException) as exc:
        raise TableUnavailable(
            f"The data of table '{table.id}' cannot be read right now ({type(exc).__name__})."
        ) from None
    select = f"SELECT * FROM {name}"
    if intervals:
        decoded = ", ".join(f"{_INTERVAL}({quote_ident(c)}) AS {quote_ident(c)}" for c in intervals)
        select = f"SELECT * REPLACE ({decoded}) FROM {name}"
    return ArrowSource(name, dataset, select)


def _logical_kinds(schema: pq.ParquetSchema) -> dict[str, str]:
    """UUID, JSON or INTERVAL for top-level columns of those parquet types."""
    kinds: dict[str, str] = {}
    for i in range(len(schema)):
        column = schema.column(i)
        if "." in column.path:
            continue
        logical = str(column.logical_type.type).upper()
        if logical in ("UUID", "JSON"):
            kinds[column.name] = logical
        elif column.converted_type == "INTERVAL" or logical == "INTERVAL":
            kinds[column.name] = "INTERVAL"
    return kinds


def install_decoders(con: duckdb.DuckDBPyConnection) -> None:
    """Macros the views use: parquet INTERVAL (months, days as signed and milliseconds as
    unsigned little-endian 32-bit numbers, as DuckDB reads them) from its 12 bytes."""
    con.execute(
        "CREATE MACRO __agnes_le32(h, k) AS ('0x' || substr(h, 8 * k + 7, 2) || "
        "substr(h, 8 * k + 5, 2) || substr(h, 8 * k + 3, 2) || substr(h, 8 * k + 1, 2))::BIGINT"
    )
    con.execute(
        "CREATE MACRO __agnes_i32(v) AS CASE WHEN v >= 2147483648 THEN v - 4294967296 ELSE v END"
    )
    con.execute(
        f"CREATE MACRO {_INTERVAL}(b) AS to_months(__agnes_i32(__agnes_le32(hex(b), 0))::INTEGER)"
        " + to_days(__agnes_i32(__agnes_le32(hex(b), 1))::INTEGER)"
        " + to_milliseconds(__agnes_le32(hex(b), 2))"
    )
