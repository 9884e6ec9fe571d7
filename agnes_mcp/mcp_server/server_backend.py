"""The server backend: every tool runs here with the caller's grants.

Snapshots are stored server-side per user (queryable by name, downloadable as parquet)
and large results are kept in memory for the caller's token.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

import pyarrow as pa

from agnes_mcp.auth.principal import Principal
from agnes_mcp.catalog_models import TableSchema, sample_rows
from agnes_mcp.catalog_view import extra_schema
from agnes_mcp.identity import WhoAmI, describe
from agnes_mcp.mcp_server.backend import Backend, CatalogListing, MetricListing
from agnes_mcp.mcp_server.result_store import ResultStore, result_owner
from agnes_mcp.mcp_server.tool_models import SessionExportOutput, SnapshotInfo
from agnes_mcp.metrics.compiler import MetricRequest
from agnes_mcp.metrics.summary import MetricDetail
from agnes_mcp.query.snapshots import Snapshots
from agnes_mcp.rails.extra_tables import ExtraTable
from agnes_mcp.rails.refusals import (
    QueryRefused,
    TableNotFound,
    name_ambiguous,
    shadowed_note,
)
from agnes_mcp.rails.results import Answer
from agnes_mcp.rails.snapshot_spec import SnapshotEstimate, SnapshotSpec
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.services import Services
from agnes_mcp.session_export import server_export
from agnes_mcp.session_export.tool_calls import current_session
from agnes_sync.snapshot_meta import SnapshotMeta
from agnes_sync.sql_text import quote_ident


class ServerBackend(Backend):
    kind: ClassVar[str] = "server"

    def __init__(self, services: Services, principal: Principal, results: ResultStore) -> None:
        self.services = services
        self.principal = principal
        self.results = results
        self._owner = result_owner(principal)

    # --- discovery ---------------------------------------------------------------------------

    def whoami(self) -> WhoAmI:
        return describe(self.principal, self.services.groups.names())

    def catalog(self, search: str | None, query_mode: str | None) -> CatalogListing:
        entries = self.services.catalog_view.entries(self.principal, search, query_mode)
        return CatalogListing(
            entries, self.services.metric_service.summaries(self.principal, search)
        )

    def _own(self, table: str, extras: dict[str, ExtraTable]) -> ExtraTable | None:
        """The caller's result or snapshot named ``table``, read as ``query`` reads it
        (a table they may read under the same name makes it ambiguous: refused)."""
        kept = extras.get(table)
        catalog = self.services.query.catalog.current().tables
        if kept is not None and table in catalog and self._readable(table):
            raise name_ambiguous(table, kept.kind, kept.source)
        return kept

    def schema(self, table: str) -> TableSchema:
        kept = self._own(table, self._extras())
        if kept is not None:  # a result handle or a snapshot: query reads it, so does this
            return extra_schema(kept)
        try:
            return self.services.catalog_view.schema(self.principal, table)
        except TableNotFound as missing:
            raise self._expired_or(missing) from None

    def describe(self, table: str, n: int) -> Answer:
        extras = self._extras()
        if self._own(table, extras) is not None:
            sample_rows(n)
            sql = f"SELECT * FROM {quote_ident(table)} LIMIT {int(n)}"
            return self.services.query.run(
                self.principal, sql, limit=n, mode="local", extras=extras, action="describe"
            ).answer()
        try:
            return self.services.catalog_view.describe(self.principal, table, n)
        except TableNotFound as missing:
            raise self._expired_or(missing) from None

    # --- queries -----------------------------------------------------------------------------

    def _extras(self) -> dict[str, ExtraTable]:
        return self.services.own_tables(self.principal, self.results)

    def _readable(self, table_id: str) -> bool:
        return self.services.access.can_access(self.principal, ResourceType.TABLE, table_id)

    def query(self, sql: str, limit: int | None) -> Answer:
        try:
            return self.services.query.run(
                self.principal, sql, limit=limit, mode="local", extras=self._extras()
            ).answer()
        except TableNotFound as missing:
            raise self._expired_or(missing) from None

    def _expired_or(self, missing: TableNotFound) -> QueryRefused:
        return self.services.stored_snapshots.missing_said(self.principal, missing)

    def query_remote(self, sql: str, limit: int | None) -> Answer:
        return self.services.query.run(
            self.principal, sql, limit=limit, mode="remote", action="query.remote"
        ).answer()

    def keep_result(self, table: pa.Table, answer: Answer) -> str:
        """Kept with the tables its rows came from: a result or snapshot it read stands
        for the tables that one came from."""
        sources: set[str] = set()
        for read in answer.provenance.tables:
            if read.query_mode == "result":  # gone meanwhile: stands for what none may read
                sources |= self.results.sources(self._owner, read.id) or {read.id}
            elif read.query_mode == "snapshot":
                sources.add(read.source)
            else:
                sources.add(read.id)
        return self.results.keep(self._owner, table, answer.sql, frozenset(sources))

    # --- snapshots ---------------------------------------------------------------------------

    def snapshot_estimate(self, spec: SnapshotSpec) -> SnapshotEstimate:
        return Snapshots(self.services.query).estimate(self.principal, spec)

    def snapshot_create(
        self, spec: SnapshotSpec, name: str, ttl_seconds: int | None
    ) -> SnapshotInfo:
        meta, outcome = self.services.stored_snapshots.create(
            self.principal, spec, name, ttl_seconds
        )
        info = self._info(meta)
        return info.model_copy(update={"notes": [*info.notes, *outcome.notes()]})

    def snapshot_list(self) -> list[SnapshotInfo]:
        return [self._info(m) for m in self.services.stored_snapshots.all(self.principal)]

    def snapshot_drop(self, name: str) -> SnapshotInfo:
        return self._info(self.services.stored_snapshots.drop(self.principal, name))

    def _info(self, meta: SnapshotMeta) -> SnapshotInfo:
        base = self.services.settings.base_url
        info = SnapshotInfo.of(meta, "server", f"{base}/api/snapshots/stored/{meta.name}")
        catalog = self.services.query.catalog.current().tables
        if meta.name in catalog and self._readable(meta.name):
            info.notes.append(shadowed_note(meta.name))
        return info

    # --- metrics -----------------------------------------------------------------------------

    def metrics_list(self, search: str | None) -> MetricListing:
        return MetricListing(self.services.metric_service.summaries(self.principal, search))

    def metric_show(self, metric_id: str) -> MetricDetail:
        return self.services.metric_service.detail(self.principal, metric_id)

    def metric_query(self, metric_id: str, request: MetricRequest, limit: int | None) -> Answer:
        return self.services.metric_service.run(
            self.principal, metric_id, request, limit=limit
        ).answer()

    # --- the session as a notebook -----------------------------------------------------------

    def session_export(self, session: str | None, since: dt.datetime | None) -> SessionExportOutput:
        until = dt.datetime.now(dt.UTC)
        _, summary = server_export.notebook_for(
            self.services,
            self.principal,
            session=session,
            since=since,
            until=until,
            current=current_session(),
        )
        return SessionExportOutput(
            session=summary.session,
            since=summary.since,
            steps=summary.steps,
            ran=summary.ran,
            refused=summary.refused,
            not_replayable=summary.not_replayable,
            found=summary.found,
            download_url=server_export.download_url(self.services, summary),
            notes=summary.notes,
        )
