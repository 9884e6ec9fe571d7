"""The MCP tools' output shapes: one model per tool, the same for both backends."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from agnes_mcp.catalog_models import CatalogEntry, TableSchema
from agnes_mcp.metrics.summary import MetricSummary
from agnes_mcp.rails.results import Cell, QueryResult, Truncation
from agnes_sync.snapshot_meta import SnapshotMeta


class CatalogOutput(BaseModel):
    tables: list[CatalogEntry]
    metrics: list[MetricSummary] = Field(description="Metric definitions (first page only).")
    total_tables: int
    next_cursor: str | None = Field(description="Pass as cursor for the next page.")
    truncated: bool
    truncation: Truncation | None = None
    notes: list[str] = Field(
        default_factory=list,
        description="What to know about the listing, e.g. that the server could not be "
        "reached and this is the catalog as of the last contact.",
    )


class SchemaOutput(TableSchema):
    total_columns: int
    next_cursor: str | None
    truncated: bool
    truncation: Truncation | None = None


class ColumnSummary(BaseModel):
    name: str
    type: str
    nulls: int
    distinct: int | None = None
    min: str | None = None
    max: str | None = None


class QueryOutput(QueryResult):
    """A query's answer as an MCP tool presents it: the REST result's fields, with the
    rows cut to the output budget and a handle to the whole result when it was kept."""

    rows: list[list[Cell]] = Field(description="The rows shown (see shown_rows, row_count).")
    shown_rows: int
    result_handle: str | None = Field(
        default=None,
        description="A large result is kept under this name: query it (SELECT ... FROM "
        "<handle>) to aggregate or page through it.",
    )
    summary: list[ColumnSummary] | None = Field(
        default=None, description="Per-column stats of a kept result."
    )
    sql: str | None = Field(default=None, description="The SQL that ran, when Agnes wrote it.")
    notes: list[str] = Field(
        default_factory=list, description="What else to know, e.g. the range a table holds."
    )


class SnapshotInfo(BaseModel):
    name: str = Field(description="Query it by this name with the query tool.")
    table_id: str
    select: list[str]
    where: str | None
    rows: int
    bytes: int
    bytes_scanned: int
    truncated: bool
    created_at: dt.datetime
    expires_at: dt.datetime | None
    sql: str
    location: Literal["server", "workspace"]
    download_url: str | None = Field(
        default=None, description="Server snapshots: GET it (with your token) as parquet."
    )
    notes: list[str] = Field(
        default_factory=list, description="What else to know, e.g. the range a table holds."
    )

    @classmethod
    def of(
        cls,
        meta: SnapshotMeta,
        location: Literal["server", "workspace"],
        download_url: str | None = None,
    ) -> SnapshotInfo:
        return cls(
            **meta.model_dump(
                include={
                    "name",
                    "table_id",
                    "select",
                    "where",
                    "rows",
                    "bytes",
                    "bytes_scanned",
                    "truncated",
                    "created_at",
                    "sql",
                }
            ),
            expires_at=meta.expires_at,
            location=location,
            download_url=download_url,
            notes=meta.cut_notes(),
        )


class SnapshotListOutput(BaseModel):
    snapshots: list[SnapshotInfo]


class MetricListOutput(BaseModel):
    metrics: list[MetricSummary]
    truncated: bool
    truncation: Truncation | None = None
    notes: list[str] = Field(
        default_factory=list,
        description="What to know about the listing, e.g. that it is the last one kept.",
    )


class MetricQueryOutput(QueryOutput):
    metric_id: str
    variant: str = Field(description="expression, sql or sql_by_<dimension>")
    dialect: str


class DiskInfo(BaseModel):
    workspace: str
    data_bytes: int
    snapshot_bytes: int
    result_bytes: int
    cache_bytes: int
    free_bytes: int
    tables: int
    snapshots: int


class DropOutput(BaseModel):
    dropped: SnapshotInfo


class SessionExportOutput(BaseModel):
    session: str | None = Field(
        description="The session exported (None: every step in the window)."
    )
    since: dt.datetime | None = Field(description="The window's start, when one was given.")
    steps: int = Field(description="Steps in the notebook: a markdown cell each.")
    ran: int = Field(description="Steps repeated by a code cell.")
    refused: int = Field(description="Steps the rails refused (shown, with the call commented).")
    not_replayable: int = Field(
        description="Steps that ran but whose log lacks what repeating them needs (shown)."
    )
    found: int = Field(description="Steps in the window; more than steps when it was cut.")
    path: str | None = Field(default=None, description="Workspace: the notebook file written.")
    download_url: str | None = Field(
        default=None,
        description="Server: GET it with a personal access token to download the .ipynb "
        "(or run: agnes notebook export --session <session>).",
    )
    notes: list[str] = Field(default_factory=list, description="What else to know.")
