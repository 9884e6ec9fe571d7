"""Decimals wider than DuckDB holds, kept exact as text, and the note that says so.

DuckDB's DECIMAL holds 38 digits. A wider decimal (a parquet or Arrow ``decimal256``,
BigQuery's BIGNUMERIC, a warehouse's ``NUMERIC(76,38)``) read by DuckDB becomes a DOUBLE,
about 16 significant digits: every digit past those was lost without a word. Every
connector publishes such a column as its exact text (VARCHAR) instead, and its sync notes
name the column, its declared type and why the type changed (:func:`as_text_note`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

DUCKDB_MAX_DECIMAL_DIGITS = 38


def too_wide(precision: int) -> bool:
    """Whether a decimal of ``precision`` digits is more than DuckDB's DECIMAL holds."""
    return precision > DUCKDB_MAX_DECIMAL_DIGITS


def _wide(kind: pa.DataType) -> bool:
    return pa.types.is_decimal(kind) and too_wide(kind.precision)


def declared(name: str, kind: pa.DataType) -> str:
    """``name DECIMAL(p,s)``: a wide Arrow decimal column as a note names it."""
    return f"{name} DECIMAL({kind.precision},{kind.scale})"


def text_schema(schema: pa.Schema) -> tuple[pa.Schema, list[str]]:
    """``schema`` with its too-wide decimal columns as text (and its narrower
    ``decimal256`` ones as ``decimal128``, which DuckDB's Arrow scan takes), and the
    too-wide columns as :func:`declared` names them."""
    wide = [field for field in schema if _wide(field.type)]
    for index, field in enumerate(schema):
        if _wide(field.type):
            schema = schema.set(index, pa.field(field.name, pa.string(), field.nullable))
        elif pa.types.is_decimal256(field.type):
            narrow = pa.decimal128(field.type.precision, field.type.scale)
            schema = schema.set(index, pa.field(field.name, narrow, field.nullable))
    return schema, [declared(field.name, field.type) for field in wide]


def exact_decimals(table: pa.Table) -> tuple[pa.Table, list[str]]:
    """``table`` with its too-wide decimal columns as their exact text, and those columns
    as :func:`declared` names them."""
    named = []
    for index, field in enumerate(table.schema):
        if _wide(field.type):
            text = pc.cast(table.column(index), pa.string())
            table = table.set_column(index, pa.field(field.name, pa.string()), text)
            named.append(declared(field.name, field.type))
    return table, named


def as_text_note(columns: Sequence[str]) -> str | None:
    """What a sync says of the too-wide decimal ``columns`` it published as text (None
    when there are none)."""
    if not columns:
        return None
    return (
        f"wider than DuckDB's DECIMAL({DUCKDB_MAX_DECIMAL_DIGITS}), published as exact text "
        "(VARCHAR) rather than rounded to a DOUBLE: "
        + ", ".join(columns)
        + "; CAST to DOUBLE to compute with it (about 16 significant digits)"
    )
