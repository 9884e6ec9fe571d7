"""``Workspace``: the notebook's handle on Agnes, over the same backend the stdio MCP
server and the CLI use (:class:`~agnes_mcp.mcp_server.workspace_backend.WorkspaceBackend`).

Every method is one MCP tool's call: same rails, same refusals (raised as
:class:`~agnes_mcp.notebook.refusal.AgnesRefusal`), same answers (a
:class:`~agnes_mcp.notebook.result.Result` holds exactly what the tool returned).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agnes_mcp.metrics.compiler import MetricRequest, TimeRange
from agnes_mcp.notebook.listing import Listing
from agnes_mcp.notebook.refusal import checked, refusals
from agnes_mcp.notebook.result import Result
from agnes_mcp.rails.snapshot_spec import SnapshotEstimate, SnapshotSpec

if TYPE_CHECKING:
    import duckdb

    from agnes_mcp.catalog_models import CatalogEntry, ColumnInfo
    from agnes_mcp.identity import WhoAmI
    from agnes_mcp.mcp_server.tool_models import SnapshotInfo
    from agnes_mcp.mcp_server.workspace_backend import WorkspaceBackend
    from agnes_mcp.metrics.summary import MetricDetail, MetricSummary
    from agnes_sync.pull.pull import PullSummary

CATALOG_COLUMNS = ("id", "query_mode", "rows", "freshness", "partition_by", "description")
SCHEMA_COLUMNS = ("name", "type", "nullable", "description", "stats")
SNAPSHOT_COLUMNS = ("name", "table_id", "rows", "bytes", "created_at")
METRIC_COLUMNS = ("id", "display_name", "unit", "grain", "dimensions", "description")
Grain = Literal["day", "week", "month", "quarter", "year", "total"]


class Catalog(Listing["CatalogEntry"]):
    """The tables you may use; ``.metrics`` lists the metric definitions."""

    def __init__(
        self,
        tables: list[CatalogEntry],
        metrics: Listing[MetricSummary],
        notes: list[str] | None = None,
    ) -> None:
        super().__init__("Tables", tables, CATALOG_COLUMNS, notes=notes)
        self.metrics = metrics

    def _repr_html_(self) -> str:
        return super()._repr_html_() + self.metrics._repr_html_()


class Workspace:
    """Agnes from a notebook. Make one with :func:`agnes_mcp.notebook.connect`."""

    def __init__(self, backend: WorkspaceBackend, *, kind: Literal["workspace", "outside"]) -> None:
        self.backend = backend
        self.kind = kind  # outside: no workspace folder; server tables are read through the server

    @property
    def root(self) -> Path:
        return self.backend.paths.root

    def __repr__(self) -> str:
        where = "workspace" if self.kind == "workspace" else "outside a workspace, cache"
        return f"<Agnes {where} {self.root} · server {self.backend.api.base_url}>"

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- discovery --------------------------------------------------------------------

    @checked("whoami")
    def whoami(self) -> WhoAmI:
        with refusals():
            return self.backend.whoami()

    @checked("catalog")
    def catalog(
        self,
        search: str | None = None,
        query_mode: Literal["local", "materialized", "remote"] | None = None,
    ) -> Catalog:
        """The tables you may use (and, in ``.metrics``, the metric definitions)."""
        with refusals():
            listing = self.backend.catalog(search, query_mode)
        metrics = Listing("Metrics", listing.metrics, METRIC_COLUMNS, notes=listing.notes)
        return Catalog(listing.tables, metrics, notes=listing.notes)

    @checked("schema")
    def schema(self, table: str) -> Listing[ColumnInfo]:
        with refusals():
            found = self.backend.schema(table)
        title = f"{found.table} ({found.query_mode}"
        title += f", {found.rows:,} rows)" if found.rows is not None else ")"
        return Listing(title, found.columns, SCHEMA_COLUMNS)

    @checked("describe")
    def describe(self, table: str, n: int = 5) -> Result:
        with refusals():
            return Result(self.backend.describe(table, n), None)

    # --- queries ----------------------------------------------------------------------

    @checked("query")
    def query(self, sql: str, limit: int | None = None) -> Result:
        """One read-only SELECT (DuckDB SQL) on local and server tables, your snapshots
        and kept results, through the rails."""
        with refusals():
            return Result(self.backend.query(sql, limit), sql)

    @checked("query_remote")
    def query_remote(self, sql: str, limit: int | None = None) -> Result:
        """One SELECT on remote tables in their warehouse, under the scan cap and your
        budget (estimated first; refused with a narrower snapshot to take instead)."""
        with refusals():
            return Result(self.backend.query_remote(sql, limit), sql)

    # --- snapshots --------------------------------------------------------------------

    @checked("snapshot_estimate")
    def snapshot_estimate(
        self,
        table: str,
        select: list[str],
        where: str | None = None,
        limit: int | None = None,
        order_by: list[str] | None = None,
    ) -> SnapshotEstimate:
        with refusals("snapshot_estimate"):
            spec = SnapshotSpec(
                table_id=table, select=select, where=where, limit=limit, order_by=order_by or []
            )
            return self.backend.snapshot_estimate(spec)

    @checked("snapshot")
    def snapshot(
        self,
        table: str,
        select: list[str],
        *,
        name: str,
        where: str | None = None,
        limit: int | None = None,
        order_by: list[str] | None = None,
        ttl_seconds: int | None = None,
        replace: bool = False,
    ) -> SnapshotInfo:
        """Fetch part of a remote table into a local table ``name`` (query it with
        :meth:`query`). ``replace=True`` drops a snapshot of that name first, so a
        notebook can be run again."""
        with refusals("snapshot"):
            spec = SnapshotSpec(
                table_id=table, select=select, where=where, limit=limit, order_by=order_by or []
            )
            if replace and any(s.name == name for s in self.backend.snapshot_list()):
                self.backend.snapshot_drop(name)
            return self.backend.snapshot_create(spec, name, ttl_seconds)

    @checked("snapshot_list")
    def snapshots(self) -> Listing[SnapshotInfo]:
        with refusals():
            return Listing("Snapshots", self.backend.snapshot_list(), SNAPSHOT_COLUMNS)

    @checked("snapshot_drop")
    def snapshot_drop(self, name: str) -> SnapshotInfo:
        with refusals():
            return self.backend.snapshot_drop(name)

    # --- metrics ----------------------------------------------------------------------

    @checked("metrics")
    def metrics(self, search: str | None = None) -> Listing[MetricSummary]:
        with refusals():
            listing = self.backend.metrics_list(search)
        return Listing("Metrics", listing.metrics, METRIC_COLUMNS, notes=listing.notes)

    @checked("metric_show")
    def metric_show(self, metric_id: str) -> MetricDetail:
        with refusals():
            return self.backend.metric_show(metric_id)

    @checked("metric")
    def metric(
        self,
        metric_id: str,
        dimensions: list[str] | None = None,
        grain: Grain | None = None,
        time_range: tuple[dt.date | str, dt.date | str] | dict[str, Any] | None = None,
        filters: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> Result:
        """A company metric computed the agreed way; ``time_range`` is ``(start, end)``
        (start included, end excluded) or ``{"start": ..., "end": ...}``."""
        if isinstance(time_range, tuple):
            time_range = {"start": str(time_range[0]), "end": str(time_range[1])}
        with refusals("metric"):
            request = MetricRequest(
                dimensions=dimensions or [],
                filters=filters or {},
                grain=grain,
                time_range=TimeRange.model_validate(time_range) if time_range else None,
            )
            answer = self.backend.metric_query(metric_id, request, limit)
        return Result(answer, answer.sql)

    # --- the workspace's data ---------------------------------------------------------

    def pull(self) -> PullSummary:
        """Download (or refresh) the server's tables into this workspace's folder. Files it
        could not fetch are in the summary's ``failed`` and warned of
        (:class:`PullIncompleteWarning`)."""
        from agnes_sync.pull.pull import pull

        with refusals():
            summary = pull(self.backend.paths, self.backend.api)
        if summary.failed:
            import warnings

            from agnes_mcp.notebook.result import PullIncompleteWarning
            from agnes_sync.pull.pull import failed_hint

            lines = "; ".join(summary.failure_lines())
            warnings.warn(
                PullIncompleteWarning(
                    f"{len(summary.failed):,} of the files were not fetched ({lines}). "
                    + failed_hint(summary.failed, "ws.pull()")
                ),
                stacklevel=2,
            )
        return summary

    def duckdb(self) -> duckdb.DuckDBPyConnection:
        """A read-only DuckDB connection over this workspace's tables (pulled tables,
        snapshots, kept results), for your own tools: jupysql's ``%sql``, ibis, DuckDB.
        Pull first: tables not pulled are not in it."""
        import duckdb

        from agnes_sync.sql_text import quote_literal
        from agnes_sync.workspace import local_db

        with refusals():
            local_db.rebuild(self.backend.paths)  # the views name what is here now
        # Attached, not connected: DuckDB hands a second connect() of a path the instance
        # it already holds, which would be the file as it was before the rebuild.
        con = duckdb.connect()
        con.execute(f"ATTACH {quote_literal(str(self.backend.paths.db))} AS agnes (READ_ONLY)")
        con.execute("USE agnes")
        return con
