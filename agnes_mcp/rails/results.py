"""What a query returns: columns, rows (or Arrow), whether and why it was cut, provenance."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Annotated, Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeAliasType

from agnes_mcp.rails.value_text import display_rows, nested_text, values_of
from agnes_sync.human_size import human_size


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
    reason: Literal["rows", "bytes", "characters", "columns", "values", "page"] = Field(
        description="rows/bytes: the query's caps; characters/columns: the output budget; "
        "values: long values shortened for the view; page: more entries on the next page."
    )
    how_to_get_more: str


# One value of a row as JSON carries it: every JSON type, so a schema validator knows
# what a cell may be (an untyped item fails strict clients' checks).
Cell = TypeAliasType("Cell", "str | int | float | bool | list[Cell] | dict[str, Cell] | None")


# What a result says of the limits it ran with: one wording, in the REST answer and in
# the metadata every other front end reads.
CutReason = Annotated[
    Literal["rows", "bytes"] | None,
    Field(description="The cap that cut the result: rows or bytes."),
]
RowLimit = Annotated[int | None, Field(description="The row limit the query ran with.")]
RowLimitSource = Annotated[
    Literal["requested", "default", "cap"] | None,
    Field(
        description="requested: the caller's limit; default: none was given; cap: the "
        "caller asked for more than the server's row cap (max_result_rows)."
    ),
]
ByteLimit = Annotated[
    int | None, Field(description="The byte cap the query ran with (max_result_bytes).")
]
BytesBilled = Annotated[
    int | None,
    Field(
        description="What the warehouse billed for the query, and the daily budget was "
        "charged, where it bills otherwise than by the bytes scanned (BigQuery: rounded up "
        "per MB, at least 10 MB a table, 0 for a cached result)."
    ),
]


class QueryResult(BaseModel):
    columns: list[ResultColumn]
    rows: list[list[Cell]]
    row_count: int = Field(description="Rows in the result.")
    total_rows: int | None = Field(
        default=None,
        description="Rows the whole answer has, when known; more than row_count when cut.",
    )
    truncated: bool
    truncation: Truncation | None = None
    reason: CutReason = None
    row_limit: RowLimit = None
    row_limit_source: RowLimitSource = None
    byte_limit: ByteLimit = None
    bytes_scanned: int = 0
    bytes_billed: BytesBilled = None
    remaining_budget_bytes: int | None = None
    provenance: Provenance
    notes: list[str] = Field(
        default_factory=list,
        description="What else the caller should know about this result: a table not yet "
        "whole, or, for an empty answer, the range a partitioned table holds.",
    )


class ResultMeta(BaseModel):
    """Everything said about a result besides its rows. It is the wire between a server
    and a workspace (Arrow schema metadata, ``agnes.*`` keys) and what the MCP tools and
    the CLI present, so both sides read and write the same fields."""

    model_config = ConfigDict(populate_by_name=True)

    row_count: int
    truncated: bool
    reason: CutReason = None
    truncation: Truncation | None = None
    bytes_scanned: int = 0
    bytes_billed: BytesBilled = None
    remaining_budget_bytes: int | None = None
    provenance: Provenance
    row_limit: RowLimit = None
    row_limit_source: RowLimitSource = None
    byte_limit: ByteLimit = None
    total_rows: int | None = Field(
        default=None, description="Rows the whole answer has, when known (counted when cut)."
    )
    notes: list[str] = Field(
        default_factory=list, description="What else the caller should know about this result."
    )
    sql: str | None = Field(default=None, description="The SQL that ran, when Agnes wrote it.")
    metric_variant: str | None = Field(default=None, alias="variant")
    dialect: str | None = None

    def wire(self) -> dict[str, Any]:
        """The metadata that travels with the Arrow rows."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Answer(ResultMeta):
    """Rows and everything said about them, before an output budget is applied."""

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    table: pa.Table = Field(exclude=True)

    @classmethod
    def from_wire(cls, table: pa.Table, meta: dict[str, Any]) -> Answer:
        """An answer read back from Arrow rows and their ``agnes.*`` metadata."""
        fields = {k: v for k, v in meta.items() if k in _WIRE_KEYS}
        fields.setdefault("row_count", table.num_rows)
        if fields.get("truncated") and not fields.get("reason"):
            fields["reason"] = "rows"  # servers before the reason travelled
        return cls.model_validate({**fields, "table": table})

    def described(self, shown: int, cut: bool) -> QueryResult:
        """What the JSON answer (what a REST route answers unless Arrow is asked for)
        says of its first ``shown`` rows, ``cut``: whether the byte cap stopped them (its
        rows are streamed: :mod:`agnes_mcp.api.json_stream`)."""
        truncated, reason, truncation = self.truncated, self.reason, self.truncation
        if cut:
            truncated, reason = True, "bytes"
            truncation = truncation_for("bytes", shown, byte_limit=self.byte_limit)
        return QueryResult(
            columns=columns_of(self.table),
            rows=[],
            row_count=shown,
            total_rows=self.total_rows,
            truncated=truncated,
            truncation=truncation,
            reason=reason,
            row_limit=self.row_limit,
            row_limit_source=self.row_limit_source,
            byte_limit=self.byte_limit,
            bytes_scanned=self.bytes_scanned,
            bytes_billed=self.bytes_billed,
            remaining_budget_bytes=self.remaining_budget_bytes,
            provenance=self.provenance.model_copy(update={"row_count": shown}),
            notes=self.notes,
        )


def cut_by(truncated: bool, reason: str | None) -> Literal["rows", "bytes"] | None:
    """Which query cap cut a result (rows unless it was the byte cap), None when whole."""
    if not truncated:
        return None
    return "bytes" if reason == "bytes" else "rows"


def byte_cap_said(byte_limit: int | None) -> str:
    """The byte cap, by its setting's name and, when known, its value."""
    return "max_result_bytes" + (f", {human_size(byte_limit)}" if byte_limit else "")


def truncation_for(
    reason: str | None,
    shown_rows: int,
    source: str | None = None,
    total_rows: int | None = None,
    byte_limit: int | None = None,
) -> Truncation:
    """Why a result was cut by a query cap, naming the limit, and how to get the rest."""
    if reason == "bytes":
        how = (
            f"The result hit the byte cap ({byte_cap_said(byte_limit)}) after {shown_rows:,} "
            "rows: select fewer or narrower columns, aggregate, or filter."
        )
        return Truncation(reason="bytes", how_to_get_more=how)
    of = f" of {total_rows:,}" if total_rows is not None else ""
    first = f"These are the first {shown_rows:,}{of} rows"
    if source == "cap":
        how = (
            f"{first}: the server's row cap (max_result_rows) is {shown_rows:,}. Aggregate or "
            "filter in SQL, or take a snapshot of a remote table, to get the rest."
        )
    elif source == "default":
        how = (
            f"{first}: no limit was given, so the default of {shown_rows:,} applied. Pass a "
            "larger limit (up to the row cap), aggregate, or filter."
        )
    else:
        how = f"{first}: the limit you gave. Raise it (up to the row cap), aggregate, or filter."
    return Truncation(reason="rows", how_to_get_more=how)


def _exact_number(value: Decimal) -> int | float | str:
    """A DECIMAL as a JSON number where one says it exactly (an integer, or a float whose
    shortest text is the same number: 12.34, not 12345678901234567890.5), else as its
    text: never a number with digits silently lost."""
    if not value.is_finite():
        return str(value)
    if value == value.to_integral_value():
        return int(value)
    number = float(value)
    return number if Decimal(repr(number)) == value else str(value)


def json_value(value: Any) -> Any:
    """A JSON-safe form of one Arrow value."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return (
            value if value == value and value not in (float("inf"), float("-inf")) else str(value)
        )
    if isinstance(value, Decimal):
        return _exact_number(value)
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


def row_slices(table: pa.Table, slice_bytes: int, most_rows: int) -> Iterator[pa.Table]:
    """``table`` in slices of at most ``most_rows`` rows and about ``slice_bytes`` of Arrow
    each (one row at least), to render a slice at a time: a slice's length comes from the
    average row, then is cut where its own rows are larger (large rows may sit together:
    a thousand 60 KB blobs among 100,000 small rows)."""
    rows = table.num_rows
    per_row = max(1, int(table.nbytes) // max(1, rows))
    step = max(1, min(most_rows, slice_bytes // per_row))
    several = step < rows  # else one slice holds it all within slice_bytes
    start = 0
    while start < rows:
        piece = table.slice(start, step)
        while several and piece.num_rows > 1 and piece.nbytes > slice_bytes:
            shorter = min(piece.num_rows // 2, piece.num_rows * slice_bytes // piece.nbytes)
            piece = table.slice(start, max(1, shorter))
        start += piece.num_rows
        yield piece


def rows_of(table: pa.Table) -> list[list[Any]]:
    columns = [values_of(table.column(i)) for i in range(table.num_columns)]
    return [[json_value(col[r]) for col in columns] for r in range(table.num_rows)]


def text_rows(table: pa.Table) -> list[list[str | None]]:
    """Each value of ``table`` as text, as DuckDB writes it (``2024-01-01 10:11:12.12``,
    ``1.10``, ``true``, ``{'t': '2024-01-01 10:00:00'}``, ``['a,b', c]``); a NULL as None.
    For the views that are text: a notebook's HTML table (the CLI's table and CSV write
    the same)."""
    shown = display_rows(rows_of(table), [field.type for field in table.schema])
    return [[None if value is None else nested_text(value) for value in row] for row in shown]


def columns_of(table: pa.Table) -> list[ResultColumn]:
    return [ResultColumn(name=f.name, type=str(f.type)) for f in table.schema]


_WIRE_KEYS = frozenset(
    {*(f.alias or name for name, f in ResultMeta.model_fields.items()), *ResultMeta.model_fields}
)
