"""Metrics for admins: each metric's validation status, its SQL compiled for every dialect,
importing YAML (validate everything, apply only when all pass) and deleting.

One implementation for ``/api/admin/metrics/*`` and the admin app's metrics page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from agnes_mcp.auth.principal import Principal
from agnes_mcp.metrics.compiler import MetricRequest, compile_metric
from agnes_mcp.metrics.definition import MetricDefinition
from agnes_mcp.metrics.loader import MetricsInvalid, Problem, load_texts
from agnes_mcp.metrics.service import MetricNotFound
from agnes_sync.errors import AgnesError

if TYPE_CHECKING:
    from agnes_mcp.services import Services

DIALECTS = ("duckdb", "bigquery")


class CompiledSql(BaseModel):
    dialect: str
    sql: str | None = None
    error: str | None = Field(default=None, description="Why it does not compile.")


class MetricStatus(BaseModel):
    id: str
    display_name: str
    category: str
    tables: list[str]
    valid: bool
    problems: list[str] = Field(description="Unregistered tables, SQL that does not compile.")


class MetricSql(BaseModel):
    id: str
    definition: dict[str, Any] = Field(description="The definition as stored.")
    compiled: list[CompiledSql] = Field(description="Its default query in each dialect.")


class ImportResult(BaseModel):
    imported: list[str]
    removed: int
    dry_run: bool


def compiled(metric: MetricDefinition) -> list[CompiledSql]:
    """The metric's default query in each dialect (or why it does not compile)."""
    out = []
    for dialect in DIALECTS:
        try:
            sql = compile_metric(metric, MetricRequest(), dialect).sql
            out.append(CompiledSql(dialect=dialect, sql=sql))
        except (AgnesError, ValueError) as exc:  # sqlglot's errors are ValueErrors
            out.append(CompiledSql(dialect=dialect, error=str(exc)))
    return out


def metric_statuses(services: Services, admin: Principal) -> list[MetricStatus]:
    """Every stored metric with what is wrong with it now (tables unregistered since the
    import, SQL that no longer compiles)."""
    services.access.require_admin(admin)
    registered = {t.id for t in services.registry.all()}
    statuses = []
    for metric in services.metrics.all():
        problems = [
            f"reads '{table}', which is not a registered table"
            for table in metric.all_tables
            if table not in registered
        ]
        problems += [f"{c.dialect}: {c.error}" for c in compiled(metric) if c.error]
        statuses.append(
            MetricStatus(
                id=metric.id,
                display_name=metric.display_name,
                category=metric.category,
                tables=list(metric.all_tables),
                valid=not problems,
                problems=problems,
            )
        )
    return statuses


def metric_sql(services: Services, admin: Principal, metric_id: str) -> MetricSql:
    """A stored metric's definition and its SQL in each dialect (granted or not)."""
    services.access.require_admin(admin)
    metric = _stored(services, metric_id)
    return MetricSql(
        id=metric.id,
        definition=metric.model_dump(mode="json", exclude_defaults=True),
        compiled=compiled(metric),
    )


def _stored(services: Services, metric_id: str) -> MetricDefinition:
    metric = services.metrics.get(metric_id)
    if metric is None:
        raise MetricNotFound(f"There is no metric '{metric_id}'.")
    return metric


def validate_files(services: Services, files: dict[str, str]) -> list[MetricDefinition]:
    """Every definition in ``files``, or :class:`MetricsInvalid` listing every problem with
    its file and key (a table that is not registered included)."""
    definitions = load_texts(files)
    origin = _origins(files)
    registered = {t.id for t in services.registry.all()}
    problems = [
        Problem(
            origin.get(metric.id, ""),
            None,
            f"{metric.id}.tables",
            f"reads '{table}', which is not a registered table",
        )
        for metric in definitions
        for table in metric.all_tables
        if table not in registered
    ]
    if problems:
        raise MetricsInvalid(problems)
    return definitions


def import_metrics(
    services: Services,
    admin: Principal,
    files: dict[str, str],
    *,
    replace: bool = False,
    dry_run: bool = False,
) -> ImportResult:
    """Validate every file; with ``dry_run`` stop there, else store all in one transaction
    (or nothing) and audit it with ``admin``."""
    services.access.require_admin(admin)
    definitions = validate_files(services, files)
    ids = [m.id for m in definitions]
    if dry_run:  # what an import would do, removals included
        kept = set(ids)
        going = [m.id for m in services.metrics.all() if m.id not in kept] if replace else []
        return ImportResult(imported=ids, removed=len(going), dry_run=True)
    _, removed = services.metrics.put_many(definitions, updated_by=admin.user_id, replace=replace)
    services.audit.record(
        admin,
        "metrics.import",
        params={"ids": ids, "removed": removed, "replace": replace, "files": sorted(files)},
    )
    return ImportResult(imported=ids, removed=removed, dry_run=False)


def delete_metric(services: Services, admin: Principal, metric_id: str) -> None:
    services.access.require_admin(admin)
    if not services.metrics.delete(metric_id):
        raise MetricNotFound(f"There is no metric '{metric_id}'.")
    services.audit.record(admin, "metrics.delete", resource=metric_id)


def _origins(files: dict[str, str]) -> dict[str, str]:
    """Which file defines each metric id (the files are valid by now)."""
    found: dict[str, str] = {}
    for name, text in files.items():
        for metric in load_texts({name: text}):
            found.setdefault(metric.id, name)
    return found
