"""The MCP tools, written once over :class:`Backend` and registered on either server.

Every tool returns ``structuredContent`` matching its output schema plus one compact text
block, within the output budget. A refusal comes back as an error result whose text and
``structuredContent.error`` hold the stable code, message, hint and the next step.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from mcp.types import TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from agnes_mcp.catalog_models import CatalogEntry, ColumnInfo
from agnes_mcp.identity import WhoAmI
from agnes_mcp.mcp_server import output_budget as ob
from agnes_mcp.mcp_server.backend import Backend
from agnes_mcp.mcp_server.tool_models import (
    CatalogOutput,
    DiskInfo,
    DropOutput,
    MetricDetail,
    MetricListOutput,
    MetricQueryOutput,
    MetricSummary,
    QueryOutput,
    SchemaOutput,
    SnapshotEstimateOutput,
    SnapshotInfo,
    SnapshotListOutput,
    Truncation,
)
from agnes_mcp.metrics.compiler import FilterValue, MetricRequest, TimeRange
from agnes_mcp.rails.refusals import QueryRefused
from agnes_mcp.rails.snapshot_spec import SnapshotSpec
from agnes_sync.errors import AgnesError

logger = logging.getLogger("agnes.mcp")

BackendFor = Callable[[], Backend]
PAGE = 50


class CursorInvalid(QueryRefused):
    code = "cursor_invalid"
    status = 400
    default_hint = "Pass next_cursor from the previous page unchanged, or omit cursor."


def _hints(
    *, read_only: bool, destructive: bool, idempotent: bool, open_world: bool
) -> ToolAnnotations:
    return ToolAnnotations(
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        open_world_hint=open_world,
    )


READS = _hints(read_only=True, destructive=False, idempotent=True, open_world=False)
READS_WAREHOUSE = _hints(read_only=True, destructive=False, idempotent=True, open_world=True)
SPENDS = _hints(read_only=True, destructive=False, idempotent=False, open_world=True)
CREATES = _hints(read_only=False, destructive=False, idempotent=False, open_world=True)
DROPS = _hints(read_only=False, destructive=True, idempotent=True, open_world=False)


def _result(model: BaseModel, text: str) -> ToolResult:
    return ToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=model.model_dump(mode="json"),
    )


def _error(exc: AgnesError) -> ToolResult:
    error = exc.to_dict()
    text = f"error {error['code']}: {error['message']}"
    if error.get("hint"):
        text += f"\nhint: {error['hint']}"
    if error.get("next_step"):
        text += f"\nnext step: {ob.dumps(error['next_step'])}"
    return ToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content={"error": json.loads(ob.dumps(error))},
        is_error=True,
    )


def _run(body: Callable[[], ToolResult]) -> ToolResult:
    try:
        return body()
    except AgnesError as exc:
        return _error(exc)


def encode_cursor(offset: int, key: str) -> str:
    raw = json.dumps({"o": offset, "k": key}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, key: str) -> int:
    if not cursor:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offset = int(data["o"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CursorInvalid(
            f"The cursor is not one this tool issued ({type(exc).__name__})."
        ) from None
    if data.get("k") != key or offset < 0:
        raise CursorInvalid("The cursor belongs to another listing (search or filter changed).")
    return offset


# --- text renderings -------------------------------------------------------------------------


def _size(value: int | None) -> str:
    if value is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value = value / 1024  # type: ignore[assignment]
    return "?"


def catalog_text(tables: Sequence[CatalogEntry], metrics: Sequence[MetricSummary]) -> str:
    lines = [
        f"{t.id} [{t.query_mode}; {t.rows if t.rows is not None else '?'} rows; "
        f"{_size(t.size_bytes)}; synced {t.freshness.isoformat() if t.freshness else 'never'}"
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


def schema_text(table: str, description: str, columns: Sequence[ColumnInfo]) -> str:
    lines = [f"{table}: {description}"]
    for c in columns:
        stats = ""
        if c.stats is not None:
            stats = (
                f" (nulls {c.stats.null_share}, ~{c.stats.distinct_estimate} distinct, "
                f"{c.stats.min}..{c.stats.max})"
            )
        lines.append(f"{c.name} {c.type}{'' if c.nullable is not False else ' NOT NULL'}{stats}")
    return "\n".join(lines)


def _snapshot_text(info: SnapshotInfo) -> str:
    where = info.download_url or f"view {info.name}"
    return (
        f"snapshot {info.name} of {info.table_id}: {info.rows} rows, {_size(info.bytes)}, "
        f"{info.bytes_scanned:,} bytes scanned; query it as {info.name} ({where})"
    )


# --- registration ----------------------------------------------------------------------------


def register_tools(mcp: FastMCP, backend_for: BackendFor, *, workspace: bool) -> None:
    """Register the tool surface on ``mcp``; ``backend_for`` gives the caller's backend."""

    @mcp.tool(title="Who am I", annotations=READS)
    def whoami() -> WhoAmI:
        """The user this session acts as: e-mail, groups, admin status and token scopes."""
        return backend_for().whoami()

    @mcp.tool(
        title="Catalog of tables and metrics",
        annotations=READS,
        output_schema=CatalogOutput.model_json_schema(),
    )
    def catalog(
        search: Annotated[
            str | None, Field(description="Words to look for in ids and descriptions.")
        ] = None,
        query_mode: Annotated[
            Literal["local", "materialized", "remote"] | None,
            Field(description="Only tables of this query mode."),
        ] = None,
        cursor: Annotated[
            str | None, Field(description="next_cursor of the previous page.")
        ] = None,
    ) -> ToolResult:
        """Start here. Lists the tables you may use (id, description, query mode, rows,
        size, freshness, partition column, where the data lives and how to fetch it) and
        the metric definitions. Local and materialized tables: use query. Remote tables
        stay in the warehouse: use query_remote, or snapshot_estimate + snapshot_create."""

        def body() -> ToolResult:
            tables, metrics = backend_for().catalog(search, query_mode)
            key = f"{search or ''}|{query_mode or ''}"
            offset = decode_cursor(cursor, key)
            page = tables[offset : offset + PAGE]
            shown_metrics = metrics if offset == 0 else []

            def render(items: Sequence[CatalogEntry]) -> tuple[dict[str, Any], str]:
                model = CatalogOutput(
                    tables=list(items),
                    metrics=shown_metrics,
                    total_tables=len(tables),
                    next_cursor=None,
                    truncated=False,
                )
                return model.model_dump(mode="json"), catalog_text(items, shown_metrics)

            count = ob.fit_items(page, render, ob.DEFAULT_CHARS)
            if count == 0 and page:
                count = 1
            more = offset + count < len(tables)
            model = CatalogOutput(
                tables=page[:count],
                metrics=shown_metrics,
                total_tables=len(tables),
                next_cursor=encode_cursor(offset + count, key) if more else None,
                truncated=more,
                truncation=Truncation(
                    reason="page",
                    how_to_get_more="Call catalog again with cursor=next_cursor, or narrow "
                    "with search / query_mode.",
                )
                if more
                else None,
            )
            text = catalog_text(model.tables, shown_metrics)
            if more:
                text += f"\n[{len(tables) - offset - count} more: pass cursor={model.next_cursor}]"
            return _result(model, text)

        return _run(body)

    @mcp.tool(
        title="Table schema",
        annotations=READS_WAREHOUSE,
        output_schema=SchemaOutput.model_json_schema(),
    )
    def schema(
        table: Annotated[str, Field(description="A table id from catalog.")],
        cursor: Annotated[str | None, Field(description="next_cursor for more columns.")] = None,
    ) -> ToolResult:
        """Columns of a table: name, type, nullability and profile stats (null share,
        distinct estimate, min, max) where known. Read it before writing SQL."""

        def body() -> ToolResult:
            found = backend_for().schema(table)
            offset = decode_cursor(cursor, f"schema|{found.table}")
            rest = found.columns[offset:]

            def render(items: Sequence[ColumnInfo]) -> tuple[dict[str, Any], str]:
                model = SchemaOutput(
                    **found.model_dump(exclude={"columns"}),
                    columns=list(items),
                    total_columns=len(found.columns),
                    next_cursor=None,
                    truncated=False,
                )
                return model.model_dump(mode="json"), schema_text(
                    found.table, found.description, items
                )

            count = max(1, ob.fit_items(rest, render, ob.DEFAULT_CHARS)) if rest else 0
            more = offset + count < len(found.columns)
            model = SchemaOutput(
                **found.model_dump(exclude={"columns"}),
                columns=rest[:count],
                total_columns=len(found.columns),
                next_cursor=encode_cursor(offset + count, f"schema|{found.table}")
                if more
                else None,
                truncated=more,
                truncation=Truncation(
                    reason="page", how_to_get_more="Call schema again with cursor=next_cursor."
                )
                if more
                else None,
            )
            text = schema_text(found.table, found.description, model.columns)
            if more:
                left = len(found.columns) - offset - count
                text += f"\n[{left} more columns: cursor={model.next_cursor}]"
            return _result(model, text)

        return _run(body)

    @mcp.tool(
        title="Sample rows",
        annotations=READS_WAREHOUSE,
        output_schema=QueryOutput.model_json_schema(),
    )
    def describe(
        table: Annotated[str, Field(description="A table id from catalog.")],
        n: Annotated[int, Field(ge=1, le=100, description="How many rows.")] = 5,
    ) -> ToolResult:
        """A few real rows of a table, to see what values look like. Remote tables are
        read through the warehouse's free preview, never a scan."""

        def body() -> ToolResult:
            backend = backend_for()
            model, text = ob.present(backend.describe(table, n), backend, explicit=False)
            return _result(model, text)

        return _run(body)

    @mcp.tool(
        title="Query local and server tables",
        annotations=READS,
        output_schema=QueryOutput.model_json_schema(),
    )
    def query(
        sql: Annotated[str, Field(description="One read-only SELECT in DuckDB SQL.")],
        limit: Annotated[
            int | None, Field(ge=1, le=100_000, description="Most rows to return.")
        ] = None,
    ) -> ToolResult:
        """Run one SELECT (DuckDB SQL) on local and materialized tables, your snapshots and
        kept results. Remote tables are refused with remote_table_needs_snapshot, whose
        next step is a ready query_remote or snapshot_create. Never SELECT * blind: read
        schema first and select the columns you need; aggregate in SQL."""

        def body() -> ToolResult:
            backend = backend_for()
            answer = backend.query(sql, limit)
            model, text = ob.present(answer, backend, explicit=limit is not None)
            return _result(model, text)

        return _run(body)

    @mcp.tool(
        title="Query a remote table in its warehouse",
        annotations=SPENDS,
        output_schema=QueryOutput.model_json_schema(),
    )
    def query_remote(
        sql: Annotated[
            str,
            Field(
                description="One SELECT in the warehouse's SQL (BigQuery SQL for BigQuery tables)."
            ),
        ],
        limit: Annotated[
            int | None, Field(ge=1, le=100_000, description="Most rows to return.")
        ] = None,
    ) -> ToolResult:
        """Run one SELECT on remote tables, in their warehouse, under the per-query scan
        cap and your daily budget (it is estimated before it runs; over the cap it is
        refused with a narrower snapshot_create to run instead). Reports bytes scanned
        and the budget left. Filter on the partition column and select few columns."""

        def body() -> ToolResult:
            backend = backend_for()
            model, text = ob.present(
                backend.query_remote(sql, limit), backend, explicit=limit is not None
            )
            return _result(model, text)

        return _run(body)

    def _spec(
        table: str,
        select: list[str],
        where: str | None,
        limit: int | None,
        order_by: list[str] | None,
    ) -> SnapshotSpec:
        return SnapshotSpec(
            table_id=table, select=select, where=where, limit=limit, order_by=order_by or []
        )

    @mcp.tool(
        title="Estimate a snapshot",
        annotations=READS_WAREHOUSE,
        output_schema=SnapshotEstimateOutput.model_json_schema(),
    )
    def snapshot_estimate(
        table: Annotated[str, Field(description="A remote table id.")],
        select: Annotated[list[str], Field(min_length=1, description="Columns to keep.")],
        where: Annotated[
            str | None,
            Field(
                description="A predicate in the table's SQL flavor, e.g. BigQuery: "
                "event_date >= DATE_SUB(CURRENT_DATE(), INTERVAL 30 DAY)."
            ),
        ] = None,
        limit: Annotated[int | None, Field(ge=1, description="Most rows.")] = None,
        order_by: Annotated[
            list[str] | None, Field(description="Columns, each optionally followed by DESC.")
        ] = None,
    ) -> ToolResult:
        """What a snapshot would scan and return (bytes, rows) before fetching it, and
        whether it fits the scan cap and your budget. Run it first for large or
        partitioned tables."""

        def body() -> ToolResult:
            estimate = backend_for().snapshot_estimate(_spec(table, select, where, limit, order_by))
            text = (
                f"{estimate.table_id}: would scan {estimate.estimated_scan_bytes:,} bytes "
                f"(cap {estimate.limit_bytes:,}, budget left {estimate.remaining_budget_bytes:,}); "
                f"~{estimate.estimated_result_rows} rows; fits: {estimate.fits_cap}\n"
                f"SQL: {estimate.sql}"
            )
            return _result(estimate, text)

        return _run(body)

    @mcp.tool(
        title="Create a snapshot",
        annotations=CREATES,
        output_schema=SnapshotInfo.model_json_schema(),
    )
    def snapshot_create(
        table: Annotated[str, Field(description="A remote table id.")],
        select: Annotated[list[str], Field(min_length=1, description="Columns to keep.")],
        name: Annotated[
            str, Field(description="Name to query it by: lowercase letters, digits, _.")
        ],
        where: Annotated[
            str | None, Field(description="A predicate in the table's SQL flavor.")
        ] = None,
        limit: Annotated[int | None, Field(ge=1, description="Most rows.")] = None,
        order_by: Annotated[
            list[str] | None, Field(description="Columns, each optionally followed by DESC.")
        ] = None,
        ttl_hours: Annotated[
            float | None, Field(gt=0, description="Drop it after this many hours.")
        ] = None,
    ) -> ToolResult:
        """Fetch a filtered subset of a remote table (under the scan cap) and keep it as a
        table you can query by name with query. Use snapshot_estimate first."""

        def body() -> ToolResult:
            ttl = int(ttl_hours * 3600) if ttl_hours else None
            info = backend_for().snapshot_create(
                _spec(table, select, where, limit, order_by), name, ttl
            )
            return _result(info, _snapshot_text(info))

        return _run(body)

    @mcp.tool(
        title="List snapshots",
        annotations=READS,
        output_schema=SnapshotListOutput.model_json_schema(),
    )
    def snapshot_list() -> ToolResult:
        """Your snapshots: name, source table, rows, size, when taken and when they expire."""

        def body() -> ToolResult:
            model = SnapshotListOutput(snapshots=backend_for().snapshot_list())
            text = "\n".join(_snapshot_text(s) for s in model.snapshots) or "No snapshots."
            return _result(model, text)

        return _run(body)

    @mcp.tool(
        title="Drop a snapshot", annotations=DROPS, output_schema=DropOutput.model_json_schema()
    )
    def snapshot_drop(
        name: Annotated[str, Field(description="The snapshot's name.")],
    ) -> ToolResult:
        """Delete one of your snapshots."""

        def body() -> ToolResult:
            model = DropOutput(dropped=backend_for().snapshot_drop(name))
            return _result(model, f"dropped snapshot {name}")

        return _run(body)

    @mcp.tool(
        title="List metrics", annotations=READS, output_schema=MetricListOutput.model_json_schema()
    )
    def metrics_list(
        search: Annotated[
            str | None, Field(description="Words, synonyms welcome (e.g. 'mau').")
        ] = None,
    ) -> ToolResult:
        """The company's metric definitions you may use. Prefer them to writing your own
        metric SQL: call metric_query."""

        def body() -> ToolResult:
            metrics = backend_for().metrics_list(search)

            def render(items: Sequence[MetricSummary]) -> tuple[dict[str, Any], str]:
                model = MetricListOutput(metrics=list(items), truncated=False)
                return model.model_dump(mode="json"), _metrics_text(items)

            count = ob.fit_items(metrics, render, ob.DEFAULT_CHARS)
            more = count < len(metrics)
            model = MetricListOutput(
                metrics=metrics[:count],
                truncated=more,
                truncation=Truncation(reason="page", how_to_get_more="Narrow with search.")
                if more
                else None,
            )
            return _result(model, _metrics_text(model.metrics))

        return _run(body)

    @mcp.tool(
        title="Show a metric", annotations=READS, output_schema=MetricDetail.model_json_schema()
    )
    def metric_show(id: Annotated[str, Field(description="category/name")]) -> ToolResult:
        """A metric's full definition: expression or SQL, table, grain, dimensions,
        filters, synonyms and notes."""

        def body() -> ToolResult:
            detail = backend_for().metric_show(id)
            return _result(detail, ob.dumps(detail.definition)[: ob.DEFAULT_CHARS])

        return _run(body)

    @mcp.tool(
        title="Compute a metric",
        annotations=SPENDS,
        output_schema=MetricQueryOutput.model_json_schema(),
    )
    def metric_query(
        id: Annotated[str, Field(description="category/name")],
        dimensions: Annotated[
            list[str] | None, Field(description="Breakdowns, from metric_show.")
        ] = None,
        filters: Annotated[
            dict[str, FilterValue | list[FilterValue]] | None,
            Field(description="dimension -> value or list of values."),
        ] = None,
        grain: Annotated[
            Literal["day", "week", "month", "quarter", "year", "total"] | None,
            Field(description="Time grain; 'total' for one number. Default: the metric's."),
        ] = None,
        time_range: Annotated[
            TimeRange | None, Field(description="start (included) and end (excluded) dates.")
        ] = None,
        limit: Annotated[int | None, Field(ge=1, le=100_000, description="Most rows.")] = None,
    ) -> ToolResult:
        """Compute a company metric the agreed way: Agnes compiles its definition into SQL
        for the engine holding its tables (DuckDB, or BigQuery for BigQuery tables), runs
        it through the rails and returns the rows with the SQL it ran."""

        def body() -> ToolResult:
            backend = backend_for()
            request = MetricRequest(
                dimensions=dimensions or [],
                filters=filters or {},
                grain=grain,
                time_range=time_range,
            )
            answer = backend.metric_query(id, request, limit)
            model, text = ob.present(
                answer,
                backend,
                explicit=limit is not None,
                output=MetricQueryOutput,
                metric_id=id,
                variant=answer.metric_variant or "expression",
                dialect=answer.dialect or "duckdb",
            )
            return _result(model, text)

        return _run(body)

    if workspace:

        @mcp.tool(
            title="Workspace disk use",
            annotations=READS,
            output_schema=DiskInfo.model_json_schema(),
        )
        def disk_info() -> ToolResult:
            """Sizes of the pulled data, snapshots, kept results and caches in this
            workspace, and the free space left on its disk."""

            def body() -> ToolResult:
                info = backend_for().disk_info()
                text = (
                    f"{info.workspace}: data {_size(info.data_bytes)} ({info.tables} tables), "
                    f"snapshots {_size(info.snapshot_bytes)} ({info.snapshots}), results "
                    f"{_size(info.result_bytes)}, cache {_size(info.cache_bytes)}, "
                    f"free {_size(info.free_bytes)}"
                )
                return _result(info, text)

            return _run(body)


def _metrics_text(metrics: Sequence[MetricSummary]) -> str:
    return (
        "\n".join(
            f"{m.id}: {m.display_name} ({m.unit or '-'}; tables {', '.join(m.tables)}; "
            f"dimensions {', '.join(m.dimensions) or '-'}) {m.description}"
            for m in metrics
        )
        or "No metrics."
    )
