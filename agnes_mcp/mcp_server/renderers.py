"""How the tools answer: the compact text block beside each structured result.

Clients hand the model either the text or the JSON, so the text says the same in fewer
characters: one line per entry, sizes made human, and on a cut page how to get the rest.
The page renderers build a listing tool's output model and its text for one page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from fastmcp.tools.base import ToolResult
from mcp.types import TextContent
from pydantic import BaseModel

from agnes_mcp.catalog_models import CatalogEntry, ColumnInfo, ColumnStats, TableSchema
from agnes_mcp.identity import WhoAmI
from agnes_mcp.mcp_server.tool_models import (
    CatalogOutput,
    DiskInfo,
    MetricListOutput,
    SchemaOutput,
    SnapshotInfo,
)
from agnes_mcp.metrics.summary import MetricSummary
from agnes_mcp.rails.snapshot_spec import SnapshotEstimate
from agnes_sync.human_size import human_size
from agnes_sync.plural import counted

if TYPE_CHECKING:
    from agnes_mcp.mcp_server.paging import Page


def result(model: BaseModel, text: str) -> ToolResult:
    """A tool's answer: ``model`` as structuredContent plus one text block."""
    return ToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=model.model_dump(mode="json"),
    )


def size(value: int | None) -> str:
    return human_size(value)


# --- listings --------------------------------------------------------------------------------


def catalog_text(tables: Sequence[CatalogEntry], metrics: Sequence[MetricSummary]) -> str:
    lines = [
        f"{t.id} [{t.query_mode}; {f'{t.rows:,}' if t.rows is not None else '?'} rows; "
        f"{size(t.size_bytes)}; synced {t.freshness.isoformat() if t.freshness else 'never'}"
        + (f"; partitioned by {t.partition_by}" if t.partition_by else "")
        + (
            f"; in workspace: {'yes' if t.in_workspace else 'no'}"
            if t.in_workspace is not None
            else ""
        )
        + f"] {t.description}"
        for t in tables
    ]
    if metrics:
        lines.append("Metrics: " + "; ".join(f"{m.id} ({m.display_name})" for m in metrics))
    return "\n".join(lines) or "No tables."


def catalog_page(
    tables: list[CatalogEntry],
    page: Page,
    *,
    metrics: list[MetricSummary],
    total: int,
    notes: list[str] | None = None,
) -> tuple[CatalogOutput, str]:
    """One page of the catalog; the metrics come with the first page only."""
    shown_metrics = metrics if page.offset == 0 else []
    model = CatalogOutput(
        tables=tables,
        metrics=shown_metrics,
        total_tables=total,
        next_cursor=page.next_cursor,
        truncated=page.truncated,
        truncation=page.truncation,
        notes=notes or [],
    )
    text = _noted(catalog_text(tables, shown_metrics), notes)
    if page.truncated:
        text += f"\n[{page.remaining} more: pass cursor={page.next_cursor}]"
    return model, text


def schema_text(table: str, description: str, columns: Sequence[ColumnInfo]) -> str:
    lines = [f"{table}: {description}"]
    for c in columns:
        stats = _stats_text(c.stats) if c.stats is not None else ""
        lines.append(f"{c.name} {c.type}{'' if c.nullable is not False else ' NOT NULL'}{stats}")
    return "\n".join(lines)


def _stats_text(stats: ColumnStats) -> str:
    """What is known of a column's values; a statistic the source does not give is left
    out (a remote table's range comes from storage metadata, its nulls may not)."""
    said = []
    if stats.null_share is not None:
        said.append(f"nulls {stats.null_share}")
    if stats.distinct_estimate is not None:
        said.append(f"~{stats.distinct_estimate} distinct")
    if stats.min is not None or stats.max is not None:
        said.append(
            f"{'' if stats.min is None else stats.min}..{'' if stats.max is None else stats.max}"
        )
    return f" ({', '.join(said)})" if said else ""


def schema_page(
    columns: list[ColumnInfo], page: Page, *, table: TableSchema
) -> tuple[SchemaOutput, str]:
    model = SchemaOutput(
        **table.model_dump(exclude={"columns"}),
        columns=columns,
        total_columns=len(table.columns),
        next_cursor=page.next_cursor,
        truncated=page.truncated,
        truncation=page.truncation,
    )
    text = _noted(schema_text(table.table, table.description, columns), table.notes)
    if page.truncated:
        text += f"\n[{page.remaining} more columns: cursor={page.next_cursor}]"
    return model, text


def metrics_text(metrics: Sequence[MetricSummary]) -> str:
    return (
        "\n".join(
            f"{m.id}: {m.display_name} ({m.unit or '-'}; tables {', '.join(m.tables)}; "
            f"dimensions {', '.join(m.dimensions) or '-'}) {m.description}"
            for m in metrics
        )
        or "No metrics."
    )


def metrics_page(
    metrics: list[MetricSummary], page: Page, *, notes: list[str] | None = None
) -> tuple[MetricListOutput, str]:
    model = MetricListOutput(
        metrics=metrics, truncated=page.truncated, truncation=page.truncation, notes=notes or []
    )
    return model, _noted(metrics_text(metrics), notes)


def _noted(text: str, notes: list[str] | None) -> str:
    """``text`` with each note on a line of its own after it."""
    return text + "".join(f"\nNote: {note}" for note in notes or [])


# --- snapshots and the workspace -------------------------------------------------------------


def estimate_text(estimate: SnapshotEstimate) -> str:
    rows = estimate.estimated_result_rows
    verdict = "fits" if estimate.fits_cap else f"would be refused ({estimate.blocked_by})"
    return (
        f"{estimate.table_id}: would scan {size(estimate.estimated_scan_bytes)} "
        f"(cap {size(estimate.limit_bytes)}, budget left "
        f"{size(estimate.remaining_budget_bytes)}); "
        f"at most {f'{rows:,}' if rows is not None else '?'} rows "
        f"(snapshot cap {estimate.max_snapshot_rows:,} rows, {size(estimate.max_snapshot_bytes)}); "
        f"{verdict}\nSQL: {estimate.sql}"
    )


def snapshot_text(info: SnapshotInfo) -> str:
    where = info.download_url or f"view {info.name}"
    return (
        f"snapshot {info.name} of {info.table_id}: {info.rows:,} rows, {size(info.bytes)}, "
        f"{size(info.bytes_scanned)} scanned; query it as {info.name} ({where})"
    ) + "".join(f"\nNote: {note}" for note in info.notes)


def snapshots_text(snapshots: Sequence[SnapshotInfo]) -> str:
    return "\n".join(snapshot_text(s) for s in snapshots) or "No snapshots."


def whoami_text(who: WhoAmI) -> str:
    role = "admin" if who.is_admin else "user"
    groups = ", ".join(who.groups) or "none"
    return (
        f"{who.email}{f' ({who.name})' if who.name else ''}: {role}; groups: {groups}; "
        f"token scopes: {', '.join(who.scopes) or 'none'}"
    )


def disk_text(info: DiskInfo) -> str:
    return (
        f"{info.workspace}: data {size(info.data_bytes)} ({counted(info.tables, 'table')}), "
        f"snapshots {size(info.snapshot_bytes)} ({info.snapshots}), results "
        f"{size(info.result_bytes)}, cache {size(info.cache_bytes)}, "
        f"free {size(info.free_bytes)}"
    )
