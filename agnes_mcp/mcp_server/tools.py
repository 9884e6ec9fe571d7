"""The MCP tools, written once over :class:`Backend` and registered on either server.

Each tool is a declaration: its signature (with a description on every argument), its
docstring, and a call to the backend whose answer a pager or renderer turns into
``structuredContent`` matching its output schema plus one compact text block, within the
output budget. Refusals are mapped to error results once, by the middleware
:func:`register_tools` installs (:mod:`agnes_mcp.mcp_server.errors`).

The tools that run queries (query, query_remote, describe, metric_query, snapshot_estimate,
snapshot_create) are async and do their work on the query lane
(:mod:`agnes_mcp.query.concurrency`): FastMCP runs a sync tool on the thread pool every
other tool and route shares, which slow queries would fill.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Literal

from fastmcp import FastMCP
from fastmcp.tools.base import ToolResult
from mcp.types import ToolAnnotations
from pydantic import Field, ValidationError

from agnes_mcp.catalog_models import MAX_SAMPLE_ROWS, MAX_SEARCH_CHARS
from agnes_mcp.identity import WhoAmI
from agnes_mcp.mcp_server import output_budget as ob
from agnes_mcp.mcp_server import paging
from agnes_mcp.mcp_server import renderers as show
from agnes_mcp.mcp_server.answer_cache import AnswerCache, AnswerKey
from agnes_mcp.mcp_server.backend import Backend
from agnes_mcp.mcp_server.early_cancels import install_early_cancels
from agnes_mcp.mcp_server.errors import install_error_mapping
from agnes_mcp.mcp_server.handshake import install_one_initialize
from agnes_mcp.mcp_server.output_schemas import answer_or_refusal
from agnes_mcp.mcp_server.params_errors import install_params_errors
from agnes_mcp.mcp_server.renderers import result
from agnes_mcp.mcp_server.tool_models import (
    CatalogOutput,
    DiskInfo,
    DropOutput,
    MetricListOutput,
    MetricQueryOutput,
    QueryOutput,
    SchemaOutput,
    SessionExportOutput,
    SnapshotInfo,
    SnapshotListOutput,
)
from agnes_mcp.metrics.compiler import Filters, MetricRequest, TimeRange
from agnes_mcp.metrics.summary import MetricDetail
from agnes_mcp.query.concurrency import in_query_lane
from agnes_mcp.rails.not_bool import NUMBER  # on every number argument of a tool
from agnes_mcp.rails.refusals import invalid_arguments
from agnes_mcp.rails.snapshot_spec import SnapshotEstimate, SnapshotSpec
from agnes_mcp.session_export.tool_calls import record_tool_calls
from agnes_mcp.session_export.tool_text import export_text
from agnes_mcp.session_export.window import parse_since
from agnes_sync.snapshot_files import MAX_TTL_SECONDS

BackendFor = Callable[[], Backend]
MAX_NAME_CHARS = 200  # a table, snapshot or kept result's name (ids are 63 at most)


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
EXPORTS = _hints(read_only=False, destructive=False, idempotent=False, open_world=False)


def _spec(
    tool: str,
    table: str,
    select: list[str],
    where: str | None,
    limit: int | None,
    order_by: list[str] | None,
) -> SnapshotSpec:
    """The snapshot's spec; its own bounds (table name, columns, predicate length) refused
    as ``invalid_arguments`` naming each, like the tool's input schema."""
    try:
        return SnapshotSpec(
            table_id=table, select=select, where=where, limit=limit, order_by=order_by or []
        )
    except ValidationError as exc:
        raise invalid_arguments(tool, exc) from None


# --- registration ----------------------------------------------------------------------------


def _of_the_catalog(answer: ToolResult) -> bool:
    """A schema answer about a catalog table (kept while the catalog and grants are the
    same), not about one of the caller's snapshots or results (dropped, re-made, expired
    without the catalog changing)."""
    found = answer.structured_content or {}
    return found.get("query_mode") not in ("snapshot", "result")


def register_tools(
    mcp: FastMCP, backend_for: BackendFor, *, workspace: bool, answer_key: AnswerKey | None = None
) -> None:
    """Register the tool surface on ``mcp``; ``backend_for`` gives the caller's backend.
    ``answer_key`` (the server's) says for whom and in which state the catalog and schema
    answers are kept (:mod:`~agnes_mcp.mcp_server.answer_cache`); without it they are
    computed every call.

    Also installs the refusal mapping, so every server with these tools answers an
    :class:`~agnes_sync.errors.AgnesError` with its typed error result."""
    install_error_mapping(mcp)
    install_early_cancels(mcp)
    install_params_errors(mcp)
    install_one_initialize(mcp)
    answers = AnswerCache(answer_key)

    @mcp.tool(title="Who am I", annotations=READS, output_schema=answer_or_refusal(WhoAmI))
    def whoami() -> ToolResult:
        """The user this session acts as: e-mail, groups, admin status and token scopes."""
        who = backend_for().whoami()
        return result(who, show.whoami_text(who))

    @mcp.tool(
        title="Catalog of tables and metrics",
        annotations=READS,
        output_schema=answer_or_refusal(CatalogOutput),
    )
    async def catalog(
        search: Annotated[
            str | None,
            Field(
                max_length=MAX_SEARCH_CHARS,
                description="Words to look for in ids and descriptions.",
            ),
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

        def work() -> ToolResult:
            listing = backend_for().catalog(search, query_mode)
            return result(
                *paging.paginate(
                    listing.tables,
                    partial(
                        show.catalog_page,
                        metrics=listing.metrics,
                        total=len(listing.tables),
                        notes=listing.notes,
                    ),
                    cursor=cursor,
                    key=f"{search or ''}|{query_mode or ''}",
                    page_size=paging.PAGE,
                    how_to_get_more="Call catalog again with cursor=next_cursor, or narrow "
                    "with search / query_mode.",
                )
            )

        return await answers.answer(("catalog", search, query_mode, cursor), work)

    @mcp.tool(
        title="Table schema",
        annotations=READS_WAREHOUSE,
        output_schema=answer_or_refusal(SchemaOutput),
    )
    async def schema(
        table: Annotated[
            str,
            Field(
                max_length=MAX_NAME_CHARS,
                description="A table id from catalog, a snapshot or a result_ handle.",
            ),
        ],
        cursor: Annotated[str | None, Field(description="next_cursor for more columns.")] = None,
    ) -> ToolResult:
        """Columns of a table: name, type, nullability and profile stats (null share,
        distinct estimate, min, max) where known. Read it before writing SQL."""

        def work() -> ToolResult:
            found = backend_for().schema(table)
            return result(
                *paging.paginate(
                    found.columns,
                    partial(show.schema_page, table=found),
                    cursor=cursor,
                    key=f"schema|{found.table}",
                    how_to_get_more="Call schema again with cursor=next_cursor.",
                )
            )

        return await answers.answer(("schema", table, cursor), work, keep=_of_the_catalog)

    @mcp.tool(
        title="Sample rows",
        annotations=READS_WAREHOUSE,
        output_schema=answer_or_refusal(QueryOutput),
    )
    async def describe(
        table: Annotated[
            str,
            Field(
                max_length=MAX_NAME_CHARS,
                description="A table id from catalog, a snapshot or a result_ handle.",
            ),
        ],
        n: Annotated[
            int, Field(ge=1, le=MAX_SAMPLE_ROWS, description="How many rows."), NUMBER
        ] = 5,
    ) -> ToolResult:
        """A few real rows of a table, to see what values look like. Remote tables are
        read through the warehouse's free preview, never a scan."""

        def work() -> ToolResult:
            backend = backend_for()
            return result(*ob.present(backend.describe(table, n), backend, explicit=False))

        return await in_query_lane(work)

    @mcp.tool(
        title="Query local and server tables",
        annotations=READS,
        output_schema=answer_or_refusal(QueryOutput),
    )
    async def query(
        sql: Annotated[str, Field(description="One read-only SELECT in DuckDB SQL.")],
        limit: Annotated[
            int | None,
            Field(ge=1, description="Most rows to return (the server's row cap applies)."),
            NUMBER,
        ] = None,
    ) -> ToolResult:
        """Run one SELECT (DuckDB SQL) on local and materialized tables, your snapshots and
        kept results. Remote tables are refused with remote_table_needs_snapshot, whose
        next step is a ready query_remote or snapshot_create. Never SELECT * blind: read
        schema first and select the columns you need; aggregate in SQL."""

        def work() -> ToolResult:
            backend = backend_for()
            answer = backend.query(sql, limit)
            return result(*ob.present(answer, backend, explicit=limit is not None))

        return await in_query_lane(work)

    @mcp.tool(
        title="Query a remote table in its warehouse",
        annotations=SPENDS,
        output_schema=answer_or_refusal(QueryOutput),
    )
    async def query_remote(
        sql: Annotated[
            str,
            Field(
                description="One SELECT in the warehouse's SQL (BigQuery SQL for BigQuery tables)."
            ),
        ],
        limit: Annotated[
            int | None,
            Field(ge=1, description="Most rows to return (the server's row cap applies)."),
            NUMBER,
        ] = None,
    ) -> ToolResult:
        """Run one SELECT on remote tables, in their warehouse, under the per-query scan
        cap and your daily budget (it is estimated before it runs; over the cap it is
        refused with a narrower snapshot_create to run instead). Reports bytes scanned
        and the budget left. Filter on the partition column and select few columns."""

        def work() -> ToolResult:
            backend = backend_for()
            answer = backend.query_remote(sql, limit)
            return result(*ob.present(answer, backend, explicit=limit is not None))

        return await in_query_lane(work)

    @mcp.tool(
        title="Estimate a snapshot",
        annotations=READS_WAREHOUSE,
        output_schema=answer_or_refusal(SnapshotEstimate),
    )
    async def snapshot_estimate(
        table: Annotated[str, Field(max_length=MAX_NAME_CHARS, description="A remote table id.")],
        select: Annotated[list[str], Field(min_length=1, description="Columns to keep.")],
        where: Annotated[
            str | None,
            Field(
                description="A predicate in the table's SQL flavor, e.g. BigQuery: "
                "event_date >= DATE_SUB(CURRENT_DATE(), INTERVAL 30 DAY)."
            ),
        ] = None,
        limit: Annotated[int | None, Field(ge=1, description="Most rows."), NUMBER] = None,
        order_by: Annotated[
            list[str] | None, Field(description="Columns, each optionally followed by DESC.")
        ] = None,
    ) -> ToolResult:
        """What a snapshot would scan and return (bytes, rows) before fetching it, and
        whether it fits the scan cap and your budget. Run it first for large or
        partitioned tables."""
        spec = _spec("snapshot_estimate", table, select, where, limit, order_by)
        estimate = await in_query_lane(lambda: backend_for().snapshot_estimate(spec))
        return result(estimate, show.estimate_text(estimate))

    @mcp.tool(
        title="Create a snapshot",
        annotations=CREATES,
        output_schema=answer_or_refusal(SnapshotInfo),
    )
    async def snapshot_create(
        table: Annotated[str, Field(max_length=MAX_NAME_CHARS, description="A remote table id.")],
        select: Annotated[list[str], Field(min_length=1, description="Columns to keep.")],
        name: Annotated[
            str,
            Field(
                description="Name to query it by: letters, digits, _ (any case, kept lowercase)."
            ),
        ],
        where: Annotated[
            str | None, Field(description="A predicate in the table's SQL flavor.")
        ] = None,
        limit: Annotated[int | None, Field(ge=1, description="Most rows."), NUMBER] = None,
        order_by: Annotated[
            list[str] | None, Field(description="Columns, each optionally followed by DESC.")
        ] = None,
        ttl_hours: Annotated[
            float | None,
            Field(
                gt=0,
                le=MAX_TTL_SECONDS / 3600,
                allow_inf_nan=False,
                description="Drop it after this many hours (at most ten years).",
            ),
            NUMBER,
        ] = None,
    ) -> ToolResult:
        """Fetch a filtered subset of a remote table (under the scan cap) and keep it as a
        table you can query by name with query. Use snapshot_estimate first."""
        ttl = max(1, round(ttl_hours * 3600)) if ttl_hours else None
        spec = _spec("snapshot_create", table, select, where, limit, order_by)
        info = await in_query_lane(lambda: backend_for().snapshot_create(spec, name, ttl))
        return result(info, show.snapshot_text(info))

    @mcp.tool(
        title="List snapshots",
        annotations=READS,
        output_schema=answer_or_refusal(SnapshotListOutput),
    )
    def snapshot_list() -> ToolResult:
        """Your snapshots: name, source table, rows, size, when taken and when they expire."""
        model = SnapshotListOutput(snapshots=backend_for().snapshot_list())
        return result(model, show.snapshots_text(model.snapshots))

    @mcp.tool(
        title="Drop a snapshot", annotations=DROPS, output_schema=answer_or_refusal(DropOutput)
    )
    def snapshot_drop(
        name: Annotated[str, Field(description="The snapshot's name.")],
    ) -> ToolResult:
        """Delete one of your snapshots."""
        model = DropOutput(dropped=backend_for().snapshot_drop(name))
        return result(model, f"dropped snapshot {name}")

    @mcp.tool(
        title="List metrics", annotations=READS, output_schema=answer_or_refusal(MetricListOutput)
    )
    def metrics_list(
        search: Annotated[
            str | None,
            Field(max_length=MAX_SEARCH_CHARS, description="Words, synonyms welcome (e.g. 'mau')."),
        ] = None,
    ) -> ToolResult:
        """The company's metric definitions you may use. Prefer them to writing your own
        metric SQL: call metric_query."""
        listing = backend_for().metrics_list(search)
        return result(
            *paging.paginate(
                listing.metrics,
                partial(show.metrics_page, notes=listing.notes),
                how_to_get_more="Narrow with search.",
            )
        )

    @mcp.tool(
        title="Show a metric", annotations=READS, output_schema=answer_or_refusal(MetricDetail)
    )
    def metric_show(
        id: Annotated[str, Field(max_length=MAX_NAME_CHARS, description="category/name")],
    ) -> ToolResult:
        """A metric's full definition: expression or SQL, table, grain, dimensions,
        filters, synonyms and notes."""
        detail = backend_for().metric_show(id)
        return result(detail, ob.dumps(detail.definition)[: ob.DEFAULT_CHARS])

    @mcp.tool(
        title="Compute a metric",
        annotations=SPENDS,
        output_schema=answer_or_refusal(MetricQueryOutput),
    )
    async def metric_query(
        id: Annotated[str, Field(max_length=MAX_NAME_CHARS, description="category/name")],
        dimensions: Annotated[
            list[str] | None, Field(description="Breakdowns, from metric_show.")
        ] = None,
        filters: Annotated[
            Filters | None,
            Field(description="dimension -> value or list of values."),
        ] = None,
        grain: Annotated[
            Literal["day", "week", "month", "quarter", "year", "total"] | None,
            Field(description="Time grain; 'total' for one number. Default: the metric's."),
        ] = None,
        time_range: Annotated[
            TimeRange | None, Field(description="start (included) and end (excluded) dates.")
        ] = None,
        limit: Annotated[
            int | None,
            Field(ge=1, description="Most rows (the server's row cap applies)."),
            NUMBER,
        ] = None,
    ) -> ToolResult:
        """Compute a company metric the agreed way: Agnes compiles its definition into SQL
        for the engine holding its tables (DuckDB, or BigQuery for BigQuery tables), runs
        it through the rails and returns the rows with the SQL it ran."""
        request = MetricRequest(
            dimensions=dimensions or [], filters=filters or {}, grain=grain, time_range=time_range
        )

        def work() -> ToolResult:
            backend = backend_for()
            answer = backend.metric_query(id, request, limit)
            return result(
                *ob.present(
                    answer,
                    backend,
                    explicit=limit is not None,
                    output=MetricQueryOutput,
                    metric_id=id,
                    variant=answer.metric_variant or "expression",
                    dialect=answer.dialect or "duckdb",
                )
            )

        return await in_query_lane(work)

    # Each call's audit rows name the call (tool, arguments, MCP session): session_export
    # repeats snapshots and metrics from them.
    record_tool_calls(mcp)

    @mcp.tool(
        title="Export the session as a notebook",
        annotations=EXPORTS,
        output_schema=answer_or_refusal(SessionExportOutput),
    )
    def session_export(
        since: Annotated[
            str | None,
            Field(
                max_length=40,
                description="Steps since: a duration back from now (30m, 2h, 1d, 1w) or an "
                "ISO time. Default: this session's steps.",
            ),
        ] = None,
        session: Annotated[
            str | None,
            Field(max_length=200, description="Another session's id. Default: this session."),
        ] = None,
    ) -> ToolResult:
        """Turn this session's data calls (query, query_remote, describe, snapshots,
        metric_query) into a Jupyter notebook that repeats them with Agnes's Python API: a
        markdown cell per step (tool, time, tables read, provenance, refusals with their
        hint) and a code cell per step that ran. In a workspace it is written to its
        notebooks/ folder (path); on the server, download_url serves it."""
        out = backend_for().session_export(session, parse_since(since) if since else None)
        return result(out, export_text(out))

    if workspace:

        @mcp.tool(
            title="Workspace disk use",
            annotations=READS,
            output_schema=answer_or_refusal(DiskInfo),
        )
        def disk_info() -> ToolResult:
            """Sizes of the pulled data, snapshots, kept results and caches in this
            workspace, and the free space left on its disk."""
            info = backend_for().disk_info()
            return result(info, show.disk_text(info))
