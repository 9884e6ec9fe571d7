"""The incremental merge for exports Keboola has already cut by ``changedSince``.

Every exported row changed since the last sync, whatever its ``incremental_column`` says,
so none is dropped by a watermark (``agnes_sync.strategies.incremental`` filters by the
column's maximum, which would lose an update of an old row). The exported rows are merged
into the published data by primary key, the exported version winning (among exported
duplicates, the one with the newest ``incremental_column``); rows older than
``max_history_days`` before the newest are dropped; the result is published through
:func:`agnes_sync.strategies.full_refresh` (staged, renamed over the old file).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from agnes_sync import strategies
from agnes_sync.connector import TableRequest
from agnes_sync.contract import ExtractWriter, PublishedTable
from agnes_sync.sql_text import quote_ident, quote_literal


def merge(
    con: duckdb.DuckDBPyConnection,
    fresh_sql: str,
    request: TableRequest,
    key: Sequence[str],
    writer: ExtractWriter,
    fresh_columns: Sequence[str],
) -> PublishedTable:
    where = strategies.checked_filter(request.where_filters)
    fresh = f"SELECT * FROM ({fresh_sql}) AS fresh" + (f" WHERE {where}" if where else "")
    existing = writer.published_path(request.id)
    gone = [] if existing is None else _gone(existing, fresh_columns)
    merged = f"SELECT *, 0 AS __agnes_src FROM ({fresh})"
    if existing is not None:
        merged += (
            " UNION ALL BY NAME SELECT *, 1 AS __agnes_src FROM "
            f"read_parquet({quote_literal(str(existing))})"
        )
    inc = quote_ident(request.incremental_column) if request.incremental_column else None
    order = "__agnes_src" + (f", {strategies.newest_first(inc)} NULLS LAST" if inc else "")
    keys = ", ".join(quote_ident(k) for k in key)
    ranked = (
        "SELECT * EXCLUDE (__agnes_src, __agnes_rank) FROM ("
        f"SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY {order}) AS __agnes_rank "
        f"FROM ({merged})) WHERE __agnes_rank = 1"
    )
    if inc and request.max_history_days:
        moment = strategies.instant(inc)
        ranked = (
            f"SELECT * FROM ({ranked}) WHERE {moment} IS NULL OR {moment} >= "
            f"(SELECT max({moment}) FROM ({ranked})) - INTERVAL {int(request.max_history_days)} DAY"
        )
    ordered = f"SELECT * FROM ({ranked})" + (f" ORDER BY {inc}" if inc else "")
    published = strategies.full_refresh(con, ordered, replace(request, where_filters=None), writer)
    if gone:  # the published columns stay, so the schema the writer compares did not change
        published.notes.append(
            f"schema changed: removed {', '.join(gone)} in Keboola (kept here: the rows "
            "exported since have NULL in it, the others their last values)"
        )
    return published


def _gone(published: Path, fresh_columns: Sequence[str]) -> list[str]:
    """Columns of the published file that the source no longer exports."""
    exported = set(fresh_columns)
    return [name for name in pq.read_schema(published).names if name not in exported]
