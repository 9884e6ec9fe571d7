"""The workspace backend: ``query`` runs here on pulled parquet and local snapshots; the
catalog, remote queries, snapshots and metrics go to the server's API.

Offline, the catalog and schemas fall back to what the workspace holds, and local queries
keep working; everything that needs the warehouse says the server is unreachable.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from agnes_mcp.catalog_models import CatalogEntry, ColumnInfo, TableSchema, sample_rows
from agnes_mcp.identity import WhoAmI
from agnes_mcp.mcp_server.backend import Backend, CatalogListing, MetricListing
from agnes_mcp.mcp_server.tool_models import DiskInfo, SessionExportOutput, SnapshotInfo
from agnes_mcp.metrics.compiler import MetricRequest, check_request, compile_metric
from agnes_mcp.metrics.definition import MetricDefinition
from agnes_mcp.metrics.failures import compiled_metric_failures
from agnes_mcp.metrics.summary import MetricDetail, MetricSummary
from agnes_mcp.query.workspace_query import WorkspaceLimits, WorkspaceQuery, refuse_own_name
from agnes_mcp.rails.extra_tables import kept_description
from agnes_mcp.rails.policy import empty_sql
from agnes_mcp.rails.refusals import (
    SNAPSHOT_NAME_TAKEN_HINT,
    QueryRefused,
    SnapshotExists,
    SnapshotInvalid,
    TableNotFound,
    bounded,
    shadowed_note,
)
from agnes_mcp.rails.results import Answer
from agnes_mcp.rails.snapshot_spec import SnapshotEstimate, SnapshotSpec
from agnes_mcp.session_export import workspace_export
from agnes_mcp.session_export.refusals import NothingToExport
from agnes_mcp.session_export.workspace_log import QueryLog, log_path, logged
from agnes_sync.errors import AgnesError
from agnes_sync.server_api import ServerApi, ServerError, ServerUnreachable
from agnes_sync.snapshot_files import (
    SnapshotFiles,
    check_name,
    check_new_name,
    check_ttl,
)
from agnes_sync.snapshot_meta import SnapshotMeta
from agnes_sync.sql_text import quote_ident
from agnes_sync.storage_errors import workspace_writes
from agnes_sync.suggest import did_you_mean
from agnes_sync.table_spec import TABLE_ID
from agnes_sync.workspace import catalog_cache, local_db, results
from agnes_sync.workspace.disk import disk_usage
from agnes_sync.workspace.inventory import Inventory, LocalTable
from agnes_sync.workspace.layout import WorkspacePaths


@contextmanager
def relayed_refusals() -> Iterator[None]:
    """The server's refusals raised as the same :class:`QueryRefused` a local query
    raises (code, hint, next step kept); auth failures stay :class:`ServerError`."""
    try:
        yield
    except ServerError as exc:
        if exc.status in (401, 403) and exc.code not in _REFUSALS_ON_403:
            raise
        raise QueryRefused.relayed(
            exc.status, exc.code, exc.message, exc.hint, exc.details, exc.next_step
        ) from exc


def relayable(sql: str, limit: int | None) -> None:
    """Refuse, before a query is relayed to the server, what the local rails refuse before
    running it (a limit below 1, no SQL): the server's API would refuse it in its own words
    (``invalid_request``), and a workspace and a notebook answer as the tools do wherever
    the query runs (as :meth:`WorkspaceBackend.describe` checks ``n`` first)."""
    if limit is not None:
        bounded("limit", limit, 1)
    if not sql.strip():
        raise empty_sql()


# 403s that are decisions about data, not about who the caller is.
_REFUSALS_ON_403 = frozenset({"table_not_granted", "metric_not_granted", "table_not_distributed"})


def _stale_notes(held: Mapping[str, LocalTable], tables: Iterable[str]) -> list[str]:
    """What the last failed pull left stale of ``tables`` held here: the note a query
    reading one gives (since when its copy is, why the pull failed, how to retry), so a
    listing or schema read from the server does not pass for the data queried here."""
    return [note for t in tables if (copy := held.get(t)) is not None and (note := copy.stale)]


class WorkspaceBackend(Backend):
    kind: ClassVar[str] = "workspace"

    def __init__(
        self, paths: WorkspacePaths, api: ServerApi, limits: WorkspaceLimits | None = None
    ) -> None:
        self.paths = paths.ensure()
        self.api = api
        self.local = WorkspaceQuery(paths, limits)
        self.snapshots = SnapshotFiles(paths.snapshots)
        # Each data call is one line of the workspace's log (session_export reads it).
        self.query_log: QueryLog | None = QueryLog(log_path(paths.dot))

    # --- discovery ---------------------------------------------------------------------------

    def whoami(self) -> WhoAmI:
        return WhoAmI.model_validate(self.api.get("/api/whoami"))

    def catalog(self, search: str | None, query_mode: str | None) -> CatalogListing:
        here = self.local.inventory().tables
        try:
            answer = self.api.get("/api/catalog", search=search, query_mode=query_mode)
        except ServerUnreachable as unreachable:
            return self._offline_catalog(search, query_mode, unreachable)
        if not search and not query_mode:  # the whole listing: keep it for offline use
            catalog_cache.save(self.paths, tables=answer["tables"], metrics=answer["metrics"])
        entries = [CatalogEntry.model_validate(t) for t in answer["tables"]]
        for entry in entries:
            entry.in_workspace = entry.id in here
        return CatalogListing(
            entries,
            [MetricSummary.model_validate(m) for m in answer["metrics"]],
            _stale_notes(here, [e.id for e in entries]),
        )

    def _offline_catalog(
        self, search: str | None, query_mode: str | None, unreachable: ServerUnreachable
    ) -> CatalogListing:
        """The last catalog the server gave, marked offline and dated, plus the tables
        held here; remote tables listed as needing the server. With neither (a folder that
        never reached the server), the server's unreachability itself: an empty listing
        would read as "there are no tables"."""
        cached = catalog_cache.load(self.paths)
        inventory = self.local.inventory()
        if cached.fetched_at is None and not cached.tables and not inventory.tables:
            raise unreachable
        since = cached.fetched_at.strftime("%Y-%m-%d %H:%M UTC") if cached.fetched_at else None
        stale = f"server unreachable; catalog as of {since}" if since else "server unreachable"
        entries: dict[str, CatalogEntry] = {}
        for raw in cached.tables:
            entry = CatalogEntry.model_validate(raw)
            entry.in_workspace = entry.id in inventory.tables
            entry.source = f"{entry.source} ({stale})"
            if entry.location == "remote":
                entry.how_to_fetch = (
                    "remote (server unreachable): query_remote and snapshots need the server."
                )
            entries[entry.id] = entry
        for table in inventory.tables.values():
            if table.id in entries:
                continue
            entries[table.id] = CatalogEntry(
                id=table.id,
                description=table.description,
                query_mode=table.query_mode,
                location="local",
                rows=table.rows,
                size_bytes=table.size_bytes,
                freshness=table.updated,
                partition_by=None,
                source=f"workspace ({stale})",
                how_to_fetch="query(sql) on the local copy.",
                in_workspace=True,
                incomplete=table.incomplete,
            )
        words = (search or "").lower().split()
        found = [
            e
            for e in entries.values()
            if (not query_mode or e.query_mode == query_mode)
            and all(w in f"{e.id} {e.description}".lower() for w in words)
        ]
        metrics = [
            MetricSummary.model_validate(m)
            for m in cached.metrics
            if all(w in json.dumps(m).lower() for w in words)
        ]
        listed = sorted(found, key=lambda e: e.id)
        notes = [offline_note(since), *_stale_notes(inventory.tables, [e.id for e in listed])]
        return CatalogListing(listed, metrics, notes)

    def _local_names(self) -> set[str]:
        inventory = self.local.inventory()
        return {*inventory.tables, *inventory.snapshots, *inventory.results}

    def _as_held(self, table: str) -> str:
        """``table`` as the workspace names it when it holds it under another case
        ('ORDERS' for orders): names are matched without case, as in SQL and on the
        server, so a table held here is read here (offline too), not asked of the server."""
        if table in (names := self._local_names()):
            return table
        return next((name for name in sorted(names) if name.lower() == table.lower()), table)

    def schema(self, table: str) -> TableSchema:
        table = self._as_held(table)
        inventory = self.local.inventory()
        refuse_own_name(table, inventory)  # expired, or ambiguous: as a query says
        own = table in inventory.snapshots or table in inventory.results
        if not own:
            try:
                with relayed_refusals():
                    found = self.api.get(f"/api/catalog/{_segment(table)}/schema")
                told = TableSchema.model_validate(found)
                told.notes.extend(_stale_notes(inventory.tables, [told.table]))
                return told
            except ServerUnreachable:
                if table not in inventory.tables:
                    raise
        held = inventory.tables.get(table)
        kept = next((t for t in catalog_cache.load(self.paths).tables if t.get("id") == table), {})
        description, rows = (held.description, held.rows) if held is not None else ("", None)
        if table in inventory.results:
            rows = pq.read_metadata(inventory.results[table]).num_rows
            description = kept_description("result", "an earlier query")
        elif table in inventory.snapshots:
            rows = inventory.snapshots[table].rows
            description = kept_description("snapshot", inventory.snapshots[table].table_id)
        return TableSchema(
            table=table,
            description=description,
            query_mode=_mode_of(table, inventory),
            rows=rows,
            partition_by=kept.get("partition_by"),
            columns=[
                ColumnInfo(name=name, type=kind, nullable=nullable)
                for name, kind, nullable in self.local.columns(table)
            ],
            notes=[]
            if own
            else [
                "The server cannot be reached: the columns come from the copy pulled here; "
                "their statistics (nulls, ranges) are known to the server only.",
                *_stale_notes(inventory.tables, [table]),
            ],
        )

    @logged("describe", lambda table, n: {"table": table, "n": n})
    def describe(self, table: str, n: int) -> Answer:
        sample_rows(n)
        table = self._as_held(table)
        if table in self._local_names():
            outcome = self.local.run(f"SELECT * FROM {quote_ident(table)} LIMIT {int(n)}", n)
            return outcome.answer()
        with relayed_refusals():
            data, meta = self.api.get_arrow(f"/api/catalog/{_segment(table)}/describe", n=n)
        return Answer.from_wire(data, meta)

    # --- queries -----------------------------------------------------------------------------

    def _classify(self, name: str) -> CatalogEntry | None:
        try:
            entries = self.catalog(None, None).tables
        except ServerError:
            return None
        return next((e for e in entries if e.id == name), None)

    @logged("query", lambda sql, limit: {"sql": sql, "limit": limit})
    def query(self, sql: str, limit: int | None) -> Answer:
        try:
            return self.local.run(sql, limit, self._classify).answer()
        except TableNotFound as exc:
            raise self._servers_word(exc) from None

    def _servers_word(self, missing: TableNotFound) -> QueryRefused:
        """A table neither here nor in the server's catalog for this user: the server's
        own refusal for it (``table_not_found`` with its suggestions, alike for a table
        that does not exist and one this user may not read), as its MCP endpoint answers;
        the local one when the server cannot be asked."""
        name = missing.details.get("table")
        if not isinstance(name, str) or not TABLE_ID.match(name):
            return missing  # no table is named so (a.b.c.d): the server knows none either
        try:
            with relayed_refusals():
                self.api.get(f"/api/catalog/{_segment(name)}/schema")
        except QueryRefused as refusal:
            return refusal
        except ServerUnreachable as unreachable:
            # Not "you are not granted it": the server could not be asked, and the catalog
            # kept here (which does not list it) may be older than a grant.
            known = missing.details.get("suggestions")
            return TableNotFound(
                f"There is no table '{name}' in this workspace, and the server cannot be "
                f"asked whether you may read one: {unreachable.message}",
                hint=did_you_mean(name, known if isinstance(known, list) else [], n=3)
                + "List the tables held here with the catalog tool; once the server answers "
                "again, ask again (agnes pull fetches the tables you are granted).",
                next=missing.next_step,
                details={"table": name, "suggestions": known or []},
            )
        except ServerError:
            pass
        return missing

    @logged("query_remote", lambda sql, limit: {"sql": sql, "limit": limit})
    def query_remote(self, sql: str, limit: int | None) -> Answer:
        relayable(sql, limit)
        with relayed_refusals():
            data, meta = self.api.post_arrow(
                "/api/query", {"sql": sql, "limit": limit, "mode": "remote"}
            )
        return Answer.from_wire(data, meta)

    def keep_result(self, table: pa.Table, answer: Answer) -> str:
        with workspace_writes(self.paths.root):
            return results.keep(self.paths.results, table)

    # --- snapshots ---------------------------------------------------------------------------

    @logged("snapshot_estimate", lambda spec: _spec_arguments(spec))
    def snapshot_estimate(self, spec: SnapshotSpec) -> SnapshotEstimate:
        with relayed_refusals():
            estimate = self.api.post("/api/snapshots/estimate", spec.model_dump())
        return SnapshotEstimate.model_validate(estimate)

    @logged(
        "snapshot_create",
        lambda spec, name, ttl_seconds: {
            **_spec_arguments(spec),
            "name": name,
            "ttl_seconds": ttl_seconds,
        },
    )
    def snapshot_create(
        self, spec: SnapshotSpec, name: str, ttl_seconds: int | None
    ) -> SnapshotInfo:
        name = check_new_name(name)
        check_ttl(ttl_seconds)
        inventory = self.local.inventory()
        if name in inventory.tables or name.startswith("result_"):
            raise SnapshotInvalid(
                f"'{name}' is the name of a table here; pick another name.",
                hint=SNAPSHOT_NAME_TAKEN_HINT,
            )
        if name in inventory.snapshots:
            raise SnapshotExists(f"A snapshot named '{name}' exists.", details={"name": name})
        return self._take(
            spec,
            SnapshotMeta(
                name=name,
                table_id=spec.table_id,
                select=spec.select,
                where=spec.where,
                order_by=spec.order_by,
                limit=spec.limit,
                sql="",
                created_at=dt.datetime.now(dt.UTC),
                rows=0,
                bytes=0,
                ttl_seconds=ttl_seconds,
            ),
        )

    def _take(self, spec: SnapshotSpec, meta: SnapshotMeta) -> SnapshotInfo:
        """Run the snapshot on the server, keep its rows under ``meta``'s name, re-view."""
        with relayed_refusals():
            data, wire = self.api.post_arrow("/api/snapshots", spec.model_dump())
        answer = Answer.from_wire(data, wire)
        with workspace_writes(self.paths.root):
            saved = self.snapshots.save(
                data,
                meta.model_copy(
                    update={
                        "created_at": dt.datetime.now(dt.UTC),
                        "sql": answer.sql or meta.sql,
                        "bytes_scanned": answer.bytes_scanned,
                        "truncated": answer.truncated,
                    }
                ),
            )
            local_db.rebuild(self.paths)
        info = self._info(saved)
        return info.model_copy(update={"notes": [*info.notes, *answer.notes]})

    def snapshot_refresh(self, name: str) -> SnapshotInfo:
        """Take a snapshot again with the spec it was taken with (its TTL restarts)."""
        meta = self.snapshots.require(check_name(name))
        spec = SnapshotSpec(
            table_id=meta.table_id,
            select=meta.select,
            where=meta.where,
            limit=meta.limit,
            order_by=meta.order_by,
        )
        return self._retake(spec, meta)

    # In the log a refresh is the snapshot_create it repeats: an export takes it afresh.
    @logged(
        "snapshot_create",
        lambda spec, meta: {
            **_spec_arguments(spec),
            "name": meta.name,
            "ttl_seconds": meta.ttl_seconds,
        },
    )
    def _retake(self, spec: SnapshotSpec, meta: SnapshotMeta) -> SnapshotInfo:
        return self._take(spec, meta)

    def snapshot_prune(self) -> list[SnapshotInfo]:
        """Drop the snapshots whose TTL has passed."""
        with workspace_writes(self.paths.root):
            dropped = self.snapshots.prune_expired(dt.datetime.now(dt.UTC))
            if dropped:
                local_db.rebuild(self.paths)
        return [self._info(m) for m in dropped]

    def snapshot_list(self) -> list[SnapshotInfo]:
        with workspace_writes(self.paths.root):
            if self.snapshots.prune_expired(dt.datetime.now(dt.UTC)):
                local_db.rebuild(self.paths)
        return [self._info(m) for m in self.snapshots.all()]

    @logged("snapshot_drop", lambda name: {"name": name})
    def snapshot_drop(self, name: str) -> SnapshotInfo:
        with workspace_writes(self.paths.root):
            dropped = self.snapshots.drop(check_name(name))
            local_db.rebuild(self.paths)
        return self._info(dropped)

    def _info(self, meta: SnapshotMeta) -> SnapshotInfo:
        info = SnapshotInfo.of(meta, "workspace")
        inventory = self.local.inventory()
        if meta.name in inventory.tables or meta.name in inventory.remote:
            info.notes.append(shadowed_note(meta.name))
        return info

    # --- metrics -----------------------------------------------------------------------------

    def metrics_list(self, search: str | None) -> MetricListing:
        try:
            answer = self.api.get("/api/metrics", search=search)
        except ServerUnreachable as unreachable:
            offline = self._offline_catalog(search, None, unreachable)
            return MetricListing(offline.metrics, offline.notes)
        return MetricListing([MetricSummary.model_validate(m) for m in answer["metrics"]])

    def metric_show(self, metric_id: str) -> MetricDetail:
        try:
            with relayed_refusals():
                detail = self.api.get(f"/api/metrics/{_segment(metric_id)}")
        except ServerUnreachable:
            kept = catalog_cache.load(self.paths).definitions.get(metric_id)
            if kept is None:
                raise
            return MetricDetail.model_validate(kept)
        catalog_cache.save(self.paths, definitions={metric_id: detail})
        return MetricDetail.model_validate(detail)

    @logged(
        "metric_query",
        lambda metric_id, request, limit: {
            "metric_id": metric_id,
            "dimensions": request.dimensions,
            "grain": request.grain,
            "time_range": request.time_range.model_dump(mode="json")
            if request.time_range
            else None,
            "filters": request.filters,
            "limit": limit,
        },
    )
    def metric_query(self, metric_id: str, request: MetricRequest, limit: int | None) -> Answer:
        detail = self.metric_show(metric_id)
        metric = MetricDefinition.model_validate(detail.definition)
        here = self.local.inventory().tables
        if all(t in here for t in metric.all_tables):
            held = here.get(metric.table or "")
            columns = _parquet_columns(held.files[0]) if held and held.files else None
            compiled = compile_metric(metric, request, "duckdb", columns)
            with compiled_metric_failures(metric.id, compiled):
                outcome = self.local.run(compiled.sql, limit, self._classify)
            return outcome.answer(
                sql=compiled.sql, metric_variant=compiled.variant, dialect=compiled.dialect
            )
        check_request(metric, request)  # as the local path's compile_metric does
        if limit is not None:
            bounded("limit", limit, 1)
        body = {
            "dimensions": request.dimensions,
            "filters": request.filters,
            "grain": request.grain,
            "time_range": request.time_range.model_dump(mode="json")
            if request.time_range
            else None,
            "limit": limit,
        }
        with relayed_refusals():
            data, meta = self.api.post_arrow(f"/api/metrics/{_segment(metric_id)}/query", body)
        return Answer.from_wire(data, meta)

    # --- the workspace itself ----------------------------------------------------------------

    def disk_info(self) -> DiskInfo:
        usage = disk_usage(self.paths)
        inventory = self.local.inventory()
        return DiskInfo(
            workspace=str(self.paths.root),
            data_bytes=usage.data_bytes,
            snapshot_bytes=usage.snapshot_bytes,
            result_bytes=usage.result_bytes,
            cache_bytes=usage.cache_bytes,
            free_bytes=usage.free_bytes,
            tables=len(inventory.tables),
            snapshots=len(inventory.snapshots),
        )

    # --- the session as a notebook -----------------------------------------------------------

    def session_export(
        self, session: str | None, since: dt.datetime | None, *, path: Path | None = None
    ) -> SessionExportOutput:
        """Write the notebook to ``path`` (default: the workspace's ``notebooks/``)."""
        if self.query_log is None:
            raise NothingToExport("This workspace keeps no log of its queries.")
        try:
            user: str | None = self.whoami().email
        except AgnesError:  # offline, or a token the server refuses: export without a name
            user = None
        notebook, summary = workspace_export.notebook_for(
            self.query_log, session=session, since=since, server=self.api.base_url, user=user
        )
        if path is not None:  # the caller's own file: a refusal names it, not the workspace
            written = workspace_export.write_notebook(notebook, path)
        else:
            with workspace_writes(self.paths.root):
                written = workspace_export.write_notebook(
                    notebook, workspace_export.default_path(self.paths.root)
                )
        return SessionExportOutput(
            session=summary.session,
            since=summary.since,
            steps=summary.steps,
            ran=summary.ran,
            refused=summary.refused,
            not_replayable=summary.not_replayable,
            found=summary.found,
            path=str(written),
            notes=summary.notes,
        )

    def close(self) -> None:
        self.local.close()
        self.api.close()


def _spec_arguments(spec: SnapshotSpec) -> dict[str, object]:
    return {
        "table": spec.table_id,
        "select": spec.select,
        "where": spec.where,
        "limit": spec.limit,
        "order_by": spec.order_by,
    }


def _segment(value: str) -> str:
    return quote(value, safe="")


def _mode_of(name: str, inventory: Inventory) -> str:
    if name in inventory.snapshots:
        return "snapshot"
    if name in inventory.results:
        return "result"
    return inventory.tables[name].query_mode if name in inventory.tables else "local"


def _parquet_columns(path: Path) -> list[str] | None:
    """The column names in a parquet file's footer (None if it cannot be read)."""
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except (OSError, pa.ArrowException):
        return None


def offline_note(since: str | None) -> str:
    """What a listing made while the server cannot be reached is."""
    return (
        "The server cannot be reached: this is the catalog "
        + (f"as of the last contact ({since})" if since else "of the tables pulled here")
        + "; remote tables need the server to be queried or snapshotted."
    )
