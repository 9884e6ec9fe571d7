"""The server backend: every tool runs here with the caller's grants.

Snapshots are stored server-side per user (queryable by name, downloadable as parquet)
and large results are kept in memory for the caller's token.
"""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa

from agnes_mcp.auth.principal import Principal
from agnes_mcp.catalog_models import CatalogEntry, TableSchema
from agnes_mcp.catalog_view import preview_provenance
from agnes_mcp.identity import WhoAmI, describe
from agnes_mcp.mcp_server.backend import Answer, Backend
from agnes_mcp.mcp_server.result_store import ResultStore
from agnes_mcp.mcp_server.tool_models import (
    MetricDetail,
    MetricSummary,
    SnapshotEstimateOutput,
    SnapshotInfo,
)
from agnes_mcp.metrics.compiler import MetricRequest
from agnes_mcp.metrics.definition import MetricDefinition
from agnes_mcp.query.snapshots import Snapshots
from agnes_mcp.rails.extra_tables import ExtraTable
from agnes_mcp.rails.outcome import Outcome
from agnes_mcp.rails.refusals import SnapshotInvalid
from agnes_mcp.rails.snapshot_spec import SnapshotSpec
from agnes_mcp.services import Services
from agnes_sync.snapshot_files import SnapshotMeta
from agnes_sync.sql_text import quote_ident


def answer_of(outcome: Outcome, sql: str | None = None) -> Answer:
    return Answer(
        table=outcome.table,
        truncated=outcome.truncated,
        reason=outcome.reason,
        provenance=outcome.provenance(),
        bytes_scanned=outcome.bytes_scanned,
        remaining_budget_bytes=outcome.remaining_budget,
        sql=sql,
    )


def metric_summary(metric: MetricDefinition) -> MetricSummary:
    return MetricSummary.model_validate(metric.summary())


class ServerBackend(Backend):
    kind: ClassVar[str] = "server"

    def __init__(self, services: Services, principal: Principal, results: ResultStore) -> None:
        self.services = services
        self.principal = principal
        self.results = results
        self._owner = principal.token_id or principal.user_id

    # --- discovery ---------------------------------------------------------------------------

    def whoami(self) -> WhoAmI:
        return describe(self.principal, self.services.groups.names())

    def catalog(
        self, search: str | None, query_mode: str | None
    ) -> tuple[list[CatalogEntry], list[MetricSummary]]:
        entries = self.services.catalog_view.entries(self.principal, search, query_mode)
        metrics = self.services.metric_service.visible(self.principal, search)
        return entries, [metric_summary(m) for m in metrics]

    def schema(self, table: str) -> TableSchema:
        return self.services.catalog_view.schema(self.principal, table)

    def describe(self, table: str, n: int) -> Answer:
        found = self.services.catalog_view.table(self.principal, table)
        if not found.is_remote:
            sql = f"SELECT * FROM {quote_ident(found.id)} LIMIT {int(n)}"
            outcome = self.services.query.run(
                self.principal, sql, limit=n, mode="local", action="describe"
            )
            return answer_of(outcome)
        result = self.services.catalog_view.preview(self.principal, found, n)
        provenance = preview_provenance(found, result)
        return Answer(result.table, result.truncated, result.reason, provenance)

    # --- queries -----------------------------------------------------------------------------

    def _extras(self) -> dict[str, ExtraTable]:
        return {
            **self.results.extras(self._owner),
            **self.services.stored_snapshots.extras(self.principal),
        }

    def query(self, sql: str, limit: int | None) -> Answer:
        outcome = self.services.query.run(
            self.principal, sql, limit=limit, mode="local", extras=self._extras()
        )
        return answer_of(outcome)

    def query_remote(self, sql: str, limit: int | None) -> Answer:
        outcome = self.services.query.run(
            self.principal, sql, limit=limit, mode="remote", action="query.remote"
        )
        return answer_of(outcome)

    def keep_result(self, table: pa.Table, sql: str | None) -> str:
        return self.results.keep(self._owner, table, sql)

    # --- snapshots ---------------------------------------------------------------------------

    def snapshot_estimate(self, spec: SnapshotSpec) -> SnapshotEstimateOutput:
        estimate = Snapshots(self.services.query).estimate(self.principal, spec)
        return SnapshotEstimateOutput(
            **estimate.model_dump(),
            fits_cap=estimate.estimated_scan_bytes <= estimate.limit_bytes
            and estimate.estimated_scan_bytes <= estimate.remaining_budget_bytes,
        )

    def snapshot_create(
        self, spec: SnapshotSpec, name: str, ttl_seconds: int | None
    ) -> SnapshotInfo:
        stored = self.services.stored_snapshots
        if stored.files(self.principal).get(name) is not None:
            raise SnapshotInvalid(
                f"A snapshot named '{name}' exists; drop it first or pick another name.",
            )
        meta, _ = stored.create(self.principal, spec, name, ttl_seconds)
        return self._info(meta)

    def snapshot_list(self) -> list[SnapshotInfo]:
        return [self._info(m) for m in self.services.stored_snapshots.all(self.principal)]

    def snapshot_drop(self, name: str) -> SnapshotInfo:
        return self._info(self.services.stored_snapshots.drop(self.principal, name))

    def _info(self, meta: SnapshotMeta) -> SnapshotInfo:
        base = self.services.settings.base_url
        return SnapshotInfo.of(meta, "server", f"{base}/api/snapshots/stored/{meta.name}")

    # --- metrics -----------------------------------------------------------------------------

    def metrics_list(self, search: str | None) -> list[MetricSummary]:
        return [
            metric_summary(m) for m in self.services.metric_service.visible(self.principal, search)
        ]

    def metric_show(self, metric_id: str) -> MetricDetail:
        metric = self.services.metric_service.get(self.principal, metric_id)
        return MetricDetail(
            id=metric.id,
            summary=metric_summary(metric),
            definition=metric.model_dump(mode="json", exclude_defaults=True),
        )

    def metric_query(self, metric_id: str, request: MetricRequest, limit: int | None) -> Answer:
        run = self.services.metric_service.run(self.principal, metric_id, request, limit=limit)
        answer = answer_of(run.outcome, sql=run.compiled.sql)
        answer.metric_variant = run.compiled.variant
        answer.dialect = run.compiled.dialect
        return answer
