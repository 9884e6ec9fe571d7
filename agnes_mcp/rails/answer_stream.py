"""One SELECT's answer as a stream of Arrow record batches, typed faithfully.

DuckDB's relation API (``cursor.sql(text).to_arrow_reader()``) parses and binds a query
once to build the relation and again to run it (~0.4 ms a query here). The answer is
asked for once, so it is submitted once, below the relation API, through the engine's
own entry (``duckdb._seam.submit``, what ``to_arrow_reader`` itself calls), streaming as
before: nothing is fetched beyond what the reader reads. Where that entry is missing (a
DuckDB that moved it) the relation API is used.

Columns Arrow would mangle (UHUGEINT past 10^38 comes out wrong, TIMETZ loses its
offset, BIT and BIGNUM become raw bytes, a GEOMETRY its well-known binary and a VARIANT
its binary encoding, alone or nested) are cast to text, as DuckDB prints them; every
other column keeps its type. The types are read from the running result's description;
such an answer (rare) is submitted again with the casts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from agnes_sync.sql_text import quote_ident

try:  # the engine's entry below the relation API (DuckDB 2.x)
    from duckdb import _seam
except ImportError:  # pragma: no cover - a DuckDB without it takes the relation API
    _seam = None  # type: ignore[assignment]

_LOSSY = re.compile(r"\b(UHUGEINT|TIME WITH TIME ZONE|BIT|BIGNUM|VARINT|GEOMETRY|VARIANT)\b")
# Columns whose Arrow type is not the DuckDB type they came from (HUGEINT is an Arrow
# decimal128(38, 0), which a DECIMAL(38, 0) is too; the lossy ones are text): their field
# carries DuckDB's type under this key, so an answer read back into DuckDB (a kept result)
# can be given its own type again (see extra_tables). A GEOMETRY or VARIANT stays text:
# their nested forms could not all be cast back from it.
DUCKDB_TYPE = b"agnes.duckdb_type"
_RETYPED = re.compile(r"\b(HUGEINT|UHUGEINT|TIME WITH TIME ZONE|BIT|BIGNUM|VARINT)\b")


def stream(cursor: duckdb.DuckDBPyConnection, sql: str, batch_rows: int) -> pa.RecordBatchReader:
    """The answer to ``sql`` (one SELECT) on ``cursor``, ``batch_rows`` rows a batch."""
    if _seam is None or not hasattr(_seam, "submit"):
        return _by_relation(cursor, sql, batch_rows)
    result: Any = _seam.submit(cursor, sql, None, "stream", batch_rows)
    columns = [(str(d[0]), str(d[1])) for d in result.description or []]
    lossy = any(_LOSSY.search(kind) for _, kind in columns)
    if lossy:
        result.close()
        result = _seam.submit(cursor, faithful_sql(sql, columns), None, "stream", batch_rows)
    reader: pa.RecordBatchReader = result.arrow_reader()
    if lossy or any("HUGEINT" in kind for _, kind in columns):
        return _typed(reader, columns)
    return reader


def result_types(cursor: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[Any]]:
    """The names and DuckDB types of the answer to ``sql`` (one SELECT), bound, not run."""
    if _seam is None or not hasattr(_seam, "bind"):
        relation = cursor.sql(sql)
        return list(relation.columns), list(relation.types)
    signature = _seam.bind(cursor, sql)
    return list(signature.names), list(signature.types)


def statement_types(
    cursor: duckdb.DuckDBPyConnection, statement: duckdb.Statement
) -> tuple[list[str], list[Any]]:
    """The names and DuckDB types of the answer to ``statement`` (one SELECT, parsed by
    DuckDB already), bound without parsing it again."""
    if _seam is None or not hasattr(_seam, "bind"):
        return result_types(cursor, statement.query)
    signature = _seam.bind(cursor, statement)
    return list(signature.names), list(signature.types)


def faithful_sql(sql: str, columns: Sequence[tuple[str, str]]) -> str:
    """``sql`` with its lossy columns (by position) cast to text."""
    listed = ", ".join(
        f"CAST(#{i} AS VARCHAR) AS {quote_ident(name)}"
        if _LOSSY.search(kind)
        else f"#{i} AS {quote_ident(name)}"
        for i, (name, kind) in enumerate(columns, start=1)
    )
    return f"SELECT {listed} FROM (\n{sql}\n) AS agnes_faithful"


def _by_relation(
    cursor: duckdb.DuckDBPyConnection, sql: str, batch_rows: int
) -> pa.RecordBatchReader:
    relation = cursor.sql(sql)
    columns = list(zip(relation.columns, (str(t) for t in relation.types), strict=True))
    if any(_LOSSY.search(kind) for _, kind in columns):
        relation = cursor.sql(faithful_sql(sql, columns))
    reader: pa.RecordBatchReader = relation.to_arrow_reader(batch_rows)
    return _typed(reader, columns)


def _typed(
    reader: pa.RecordBatchReader, columns: Sequence[tuple[str, str]]
) -> pa.RecordBatchReader:
    """``reader``, its retyped columns (:data:`DUCKDB_TYPE`) marked with their DuckDB type
    (an answer of other types is not given here: the stream checks its types for lossy
    ones and HUGEINT already)."""
    if not any(_RETYPED.search(kind) for _, kind in columns):
        return reader
    fields = [
        field.with_metadata({**(field.metadata or {}), DUCKDB_TYPE: kind.encode()})
        if _RETYPED.search(kind)
        else field
        for field, (_, kind) in zip(reader.schema, columns, strict=True)
    ]
    return reader.cast(pa.schema(fields, metadata=reader.schema.metadata))
