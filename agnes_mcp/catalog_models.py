"""The catalog's shapes (entries, columns, schemas), kept apart from the code that builds
them so that clients (the workspace backend, the CLI) import them without the server."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from agnes_mcp.rails.refusals import bounded
from agnes_mcp.rails.tables import CatalogTable

MAX_SAMPLE_ROWS = 100  # describe's rows at most, in every front end
# A catalog or metrics search, in every front end: a workspace relays it to the REST API,
# so a bound on one side only answered there and was refused on the other.
MAX_SEARCH_CHARS = 200


def sample_rows(n: int) -> int:
    """``n`` for describe, or the refusal naming the range."""
    return bounded("n", n, 1, MAX_SAMPLE_ROWS)


class CatalogEntry(BaseModel):
    id: str = Field(description="The table's name in SQL.")
    description: str
    query_mode: str = Field(description="local | materialized | remote")
    location: Literal["local", "remote"] = Field(
        description="local: parquet the server holds and distributes; remote: stays in the "
        "warehouse."
    )
    rows: int | None
    size_bytes: int | None
    freshness: dt.datetime | None = Field(description="When the data was last synced.")
    partition_by: str | None
    cluster_by: list[str] = Field(default_factory=list)
    source: str
    engine: str | None = Field(default=None, description="Remote tables: duckdb or bigquery.")
    how_to_fetch: str
    in_workspace: bool | None = Field(
        default=None, description="Workspace only: whether the table is pulled here."
    )
    incomplete: str | None = Field(
        default=None,
        description="Why the table's rows are not all its source holds yet (a first load "
        "still under way: the next sync loads the rest); absent when they are.",
    )


class ColumnStats(BaseModel):
    null_share: float | None = None
    distinct_estimate: int | None = None
    min: str | None = None
    max: str | None = None


class ColumnInfo(BaseModel):
    name: str
    type: str
    nullable: bool | None = None
    description: str | None = None
    stats: ColumnStats | None = None


class TableSchema(BaseModel):
    table: str
    description: str
    query_mode: str
    rows: int | None
    partition_by: str | None
    columns: list[ColumnInfo]
    notes: list[str] = Field(
        default_factory=list,
        description="What to know about this answer, e.g. that the server could not be "
        "reached and the columns come from the local copy, without their statistics.",
    )


def how_to_fetch(table: CatalogTable) -> str:
    if table.is_remote:
        return (
            "Remote: query_remote(sql) runs it in the warehouse under the scan cap; for a "
            "filtered local copy use snapshot_estimate then snapshot_create."
        )
    if table.server_only:
        return "query(sql) on the server (server-only: not distributed to workspaces)."
    return "query(sql); in a workspace 'agnes pull' keeps a local copy."
