"""What a query returns: columns, rows (or Arrow), whether and why it was cut, provenance."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, Field


class ResultColumn(BaseModel):
    name: str
    type: str


class TableRead(BaseModel):
    id: str
    query_mode: str
    source: str
    freshness: dt.datetime | None = Field(description="When the data was last extracted.")


class Provenance(BaseModel):
    tables: list[TableRead]
    engine: str
    bytes_scanned: int
    row_count: int
    duration_ms: float
    fingerprint: str


class Truncation(BaseModel):
    reason: str  # rows | bytes
    how_to_get_more: str


class QueryResult(BaseModel):
    columns: list[ResultColumn]
    rows: list[list[Any]]
    row_count: int
    truncated: bool
    truncation: Truncation | None = None
    bytes_scanned: int = 0
    remaining_budget_bytes: int | None = None
    provenance: Provenance


def json_value(value: Any) -> Any:
    """A JSON-safe form of one Arrow value."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return (
            value if value == value and value not in (float("inf"), float("-inf")) else str(value)
        )
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        return float(value) if isinstance(exponent, int) and abs(exponent) <= 12 else str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return str(value)


def rows_of(table: pa.Table) -> list[list[Any]]:
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return [[json_value(col[r]) for col in columns] for r in range(table.num_rows)]


def columns_of(table: pa.Table) -> list[ResultColumn]:
    return [ResultColumn(name=f.name, type=str(f.type)) for f in table.schema]
