"""An Arrow table written to parquet whatever its types, for kept results and snapshots.

pyarrow cannot write an INTERVAL (Arrow ``month_day_nano_interval``: "Unhandled type for
Arrow to Parquet schema conversion"), so a query result holding one, too large to show and
kept for the agent, or a snapshot of a table holding one, failed as an internal error. Such
a table is written by DuckDB instead, as parquet's INTERVAL, which holds milliseconds: a
column with a value finer than that is written as its exact text (as DuckDB prints it)
rather than rounded.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from agnes_sync.sql_text import quote_ident, quote_literal


def finer_intervals_note(columns: list[str]) -> str | None:
    """What a sync says of the INTERVAL ``columns`` it published as text (None: none)."""
    if not columns:
        return None
    return (
        "intervals finer than the millisecond parquet's INTERVAL holds, published as "
        "exact text (VARCHAR) rather than rounded: " + ", ".join(sorted(columns))
    )


def write_table(table: pa.Table, path: Path) -> list[str]:
    """``table`` (its schema's metadata left out) as zstd parquet at ``path``; the
    INTERVAL columns written as their exact text (:func:`finer_intervals_note`)."""
    table = table.replace_schema_metadata(None)
    intervals = [field.name for field in table.schema if pa.types.is_interval(field.type)]
    if not intervals:
        pq.write_table(table, path, compression="zstd")
        return []
    import duckdb

    con = duckdb.connect()
    try:
        con.register("__agnes_rows", table)
        finer = ", ".join(
            f"bool_or(datepart('microseconds', {quote_ident(n)}) % 1000 <> 0)" for n in intervals
        )
        row = con.execute(f"SELECT {finer} FROM __agnes_rows").fetchone() or ()
        as_text = [n for n, fine in zip(intervals, row, strict=False) if fine]
        columns = ", ".join(
            f"CAST({quote_ident(n)} AS VARCHAR) AS {quote_ident(n)}" for n in as_text
        )
        rows = f"SELECT * REPLACE ({columns}) FROM __agnes_rows" if as_text else "FROM __agnes_rows"
        con.execute(
            f"COPY ({rows}) TO {quote_literal(str(path))} (FORMAT parquet, COMPRESSION zstd)"
        )
    finally:
        con.close()
    return as_text
