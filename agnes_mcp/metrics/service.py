"""Metrics for a caller: the ones they may use, their definitions, and running them.

A metric is usable when it is granted to one of the caller's groups (Admin: all) and
every table it reads is granted too. Running one compiles it for the engine holding its
tables and sends the SQL through the query service, like any other query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import yaml

from agnes_mcp.auth.principal import Principal
from agnes_mcp.auth.rbac import AccessControl
from agnes_mcp.metrics.compiler import CompiledMetric, MetricRequest, compile_metric
from agnes_mcp.metrics.definition import MetricDefinition
from agnes_mcp.metrics.failures import compiled_metric_failures
from agnes_mcp.metrics.loader import MetricsInvalid, Problem, load_texts
from agnes_mcp.metrics.summary import MetricDetail, MetricSummary
from agnes_mcp.rails.engine import dialect_of
from agnes_mcp.rails.refusals import QueryRefused, next_step
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.store.metrics import MetricRepository
from agnes_mcp.store.table_registry import TableRegistryRepository
from agnes_sync.suggest import did_you_mean

if TYPE_CHECKING:
    from agnes_mcp.query.service import QueryService
    from agnes_mcp.rails.outcome import Outcome
    from agnes_mcp.rails.results import Answer


class MetricNotFound(QueryRefused):
    code = "metric_not_found"
    status = 404


class MetricNotGranted(QueryRefused):
    """Not raised by this server: a metric the caller may not use is answered as one that
    is not there (:class:`MetricNotFound`). Kept to name an older server's refusal."""

    code = "metric_not_granted"
    status = 403
    default_hint = "Ask an admin to grant one of your groups the metric and its tables."


class MetricUnavailable(QueryRefused):
    code = "metric_unavailable"
    status = 409
    default_hint = (
        "Tell an admin: the table must be registered again, or the metric fixed or removed "
        "(the admin app's Metrics page lists it as invalid)."
    )


@dataclass
class MetricRun:
    metric: MetricDefinition
    compiled: CompiledMetric
    outcome: Outcome

    def answer(self) -> Answer:
        """The rows with the SQL that ran, the variant and the dialect it was compiled for."""
        return self.outcome.answer(
            sql=self.compiled.sql,
            metric_variant=self.compiled.variant,
            dialect=self.compiled.dialect,
        )


class MetricService:
    def __init__(
        self,
        *,
        queries: QueryService,
        access: AccessControl,
        metrics: MetricRepository,
        registry: TableRegistryRepository,
    ) -> None:
        self.queries = queries
        self.access = access
        self.metrics = metrics
        self.registry = registry

    def _usable(self, principal: Principal, metric: MetricDefinition) -> str | None:
        """Why ``principal`` may not use ``metric`` (None when they may)."""
        access = self.access
        if not access.can_access(principal, ResourceType.METRIC, metric.id):
            return f"You may not use the metric '{metric.id}'."
        for table in metric.all_tables:
            if not access.can_access(principal, ResourceType.TABLE, table):
                return f"The metric '{metric.id}' reads '{table}', which you may not query."
        return None

    def _registered(self) -> set[str]:
        return {t.id for t in self.registry.all()}

    def _broken(self, metric: MetricDefinition, registered: set[str]) -> str | None:
        """Why ``metric`` cannot run for anyone: a table it reads was unregistered since it
        was imported (None when every one is in ``registered``)."""
        gone = [t for t in metric.all_tables if t not in registered]
        if not gone:
            return None
        return f"The metric '{metric.id}' reads '{gone[0]}', which is no longer a registered table."

    def visible(self, principal: Principal, search: str | None = None) -> list[MetricDefinition]:
        """The metrics ``principal`` may use and that can run (one whose table was
        unregistered is listed only in the admin app, as invalid)."""
        self.access.require_data_scope(principal)
        registered = self._registered()  # once, not per metric
        found = [
            m
            for m in self.metrics.all()
            if self._usable(principal, m) is None and self._broken(m, registered) is None
        ]
        if search:
            words = search.lower().split()
            found = [m for m in found if all(w in _haystack(m) for w in words)]
        return found

    def summaries(self, principal: Principal, search: str | None = None) -> list[MetricSummary]:
        return [MetricSummary.of(m) for m in self.visible(principal, search)]

    def detail(self, principal: Principal, metric_id: str) -> MetricDetail:
        return MetricDetail.of(self.get(principal, metric_id))

    def get(self, principal: Principal, metric_id: str) -> MetricDefinition:
        self.access.require_data_scope(principal)
        metric = self.metrics.get(metric_id)
        # One the caller may not use (the metric, or a table it reads, not granted) reads as
        # one that is not there: metrics_list does not list it, so no answer tells it exists.
        if metric is None or self._usable(principal, metric) is not None:
            ids = [m.id for m in self.visible(principal)]
            raise MetricNotFound(
                f"There is no metric '{metric_id}'.",
                hint=did_you_mean(metric_id, ids, n=3, cutoff=0.5)
                + "List metrics with metrics_list.",
                next=next_step("metrics_list", "agnes catalog --metrics"),
            )
        broken = self._broken(metric, self._registered())
        if broken is not None:
            raise MetricUnavailable(broken, details={"metric": metric_id})
        return metric

    def target(self, metric: MetricDefinition) -> tuple[str, str]:
        """(dialect, mode) for the metric's tables: BigQuery SQL for BigQuery tables."""
        snapshot = self.queries.catalog.current()
        tables = [snapshot.tables.get(t) for t in metric.all_tables]
        remote = [t for t in tables if t is not None and t.remote is not None]
        if not remote:
            return "duckdb", "local"
        return dialect_of(remote[0]), "remote"

    def run(
        self,
        principal: Principal,
        metric_id: str,
        request: MetricRequest,
        *,
        limit: int | None = None,
    ) -> MetricRun:
        metric = self.get(principal, metric_id)
        dialect, mode = self.target(metric)
        table = self.queries.catalog.current().tables.get(metric.table or "")
        columns = [name for name, _ in table.columns] if table and table.columns else None
        compiled = compile_metric(metric, request, dialect, columns)
        with compiled_metric_failures(metric.id, compiled):
            outcome = self.queries.run(
                principal, compiled.sql, limit=limit, mode=mode, action="metric.query"
            )
        return MetricRun(metric, compiled, outcome)

    # --- admin ------------------------------------------------------------------------------

    def import_texts(
        self, principal: Principal, files: dict[str, str], *, replace: bool
    ) -> tuple[list[MetricDefinition], int]:
        """Validate every file, check the tables exist, then store all (or nothing)."""
        self.access.require_admin(principal)
        definitions = load_texts(files)
        registered = {t.id for t in self.registry.all()}
        problems = [
            Problem("", None, metric.id, f"reads '{table}', which is not a registered table")
            for metric in definitions
            for table in metric.all_tables
            if table not in registered
        ]
        if problems:
            raise MetricsInvalid(problems)
        _, removed = self.metrics.put_many(
            definitions, updated_by=principal.user_id, replace=replace
        )
        return definitions, removed

    def export_yaml(self, principal: Principal) -> str:
        self.access.require_admin(principal)
        data = [m.model_dump(exclude_defaults=True) for m in self.metrics.all()]
        return yaml.safe_dump({"metrics": data}, sort_keys=False, allow_unicode=True)


def _haystack(metric: MetricDefinition) -> str:
    return " ".join([metric.id, metric.display_name, metric.description, *metric.synonyms]).lower()
