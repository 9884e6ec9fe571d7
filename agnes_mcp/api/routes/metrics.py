"""Metric definitions: list, show and run them; admins import and export them."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field

from agnes_mcp.api.arrow_stream import ARROW_STREAM, arrow_response
from agnes_mcp.api.dependencies import AdminDep, PrincipalDep, ServicesDep
from agnes_mcp.api.hang_up import unless_hung_up
from agnes_mcp.api.json_stream import json_response
from agnes_mcp.api.negotiation import wants_arrow
from agnes_mcp.api.schemas import RequestBody
from agnes_mcp.catalog_models import MAX_SEARCH_CHARS
from agnes_mcp.metrics import admin as metric_admin
from agnes_mcp.metrics.admin import ImportResult, MetricSql
from agnes_mcp.metrics.compiler import Filters, MetricRequest, TimeRange
from agnes_mcp.metrics.summary import MetricDetail, MetricSummary
from agnes_mcp.query.concurrency import in_query_lane

router = APIRouter(prefix="/api", tags=["metrics"])


class MetricList(BaseModel):
    metrics: list[MetricSummary]
    definitions: list[MetricDetail] | None = Field(
        default=None, description="With definitions=true: each metric's full definition."
    )


class MetricQueryBody(RequestBody):
    dimensions: list[str] = Field(default_factory=list, max_length=20)
    filters: Filters = Field(default_factory=dict)
    grain: Literal["day", "week", "month", "quarter", "year", "total"] | None = None
    time_range: TimeRange | None = None
    limit: int | None = Field(default=None, ge=1)


class ImportBody(RequestBody):
    files: dict[str, str] = Field(description="File name -> YAML text.", min_length=1)
    replace: bool = Field(default=False, description="Remove metrics the files do not hold.")
    dry_run: bool = Field(default=False, description="Validate only.")


@router.get("/metrics", summary="Metrics the caller may use")
def list_metrics(
    services: ServicesDep,
    principal: PrincipalDep,
    search: str | None = Query(default=None, max_length=MAX_SEARCH_CHARS),
    definitions: bool = Query(
        default=False, description="Include every metric's definition (workspaces keep them)."
    ),
) -> MetricList:
    summaries = services.metric_service.summaries(principal, search)
    details = (
        [services.metric_service.detail(principal, m.id) for m in summaries]
        if definitions
        else None
    )
    return MetricList(metrics=summaries, definitions=details)


@router.get("/metrics/{metric_id:path}", summary="A metric's full definition")
def show_metric(metric_id: str, services: ServicesDep, principal: PrincipalDep) -> MetricDetail:
    """``metric_id`` is ``category/name``; any other text (no category, '/' escaped or
    not) reaches the service, which answers ``metric_not_found`` with suggestions."""
    return services.metric_service.detail(principal, metric_id)


@router.post(
    "/metrics/{metric_id:path}/query",
    summary="Compute a metric (compiled for its engine, run through the rails)",
    responses={200: {"content": {ARROW_STREAM: {}}, "description": "JSON, or Arrow IPC"}},
)
async def query_metric(
    metric_id: str,
    body: MetricQueryBody,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
) -> Response:
    """A client that disconnects before the answer stops the query (``query_cancelled``)."""
    arrow = wants_arrow(request)  # before any work: a 406 runs nothing

    def work() -> Response:
        run = services.metric_service.run(
            principal,
            metric_id,
            MetricRequest(body.dimensions, body.filters, body.grain, body.time_range),
            limit=body.limit,
        )
        if arrow:
            answer = run.answer()
            return arrow_response(answer.table, answer.wire())
        extra = {
            "sql": run.compiled.sql,
            "variant": run.compiled.variant,
            "dialect": run.compiled.dialect,
        }
        outcome = run.outcome
        return json_response(outcome.table, outcome.limits.bytes, outcome.described, extra)

    return await unless_hung_up(request, in_query_lane(work))


@router.post("/admin/metrics/import", summary="Validate metric YAML files, then store them all")
def import_metrics(body: ImportBody, services: ServicesDep, admin: AdminDep) -> ImportResult:
    """Every file is validated (tables must be registered) before anything is stored; a
    dry run stops there."""
    return metric_admin.import_metrics(
        services, admin, body.files, replace=body.replace, dry_run=body.dry_run
    )


@router.get(
    "/admin/metrics/export",
    summary="Every metric definition as one YAML document",
    response_class=PlainTextResponse,
    responses={200: {"content": {"application/yaml": {}}, "description": "YAML"}},
)
def export_metrics(services: ServicesDep, admin: AdminDep) -> PlainTextResponse:
    return PlainTextResponse(
        services.metric_service.export_yaml(admin), media_type="application/yaml"
    )


@router.get(
    "/admin/metrics/{category}/{name}/sql",
    summary="A metric's definition and its query compiled for each dialect (DuckDB, BigQuery)",
)
def metric_sql(category: str, name: str, services: ServicesDep, admin: AdminDep) -> MetricSql:
    return metric_admin.metric_sql(services, admin, f"{category}/{name}")


@router.delete("/admin/metrics/{category}/{name}", summary="Remove a metric definition")
def delete_metric(
    category: str, name: str, services: ServicesDep, admin: AdminDep
) -> dict[str, str]:
    metric_id = f"{category}/{name}"
    metric_admin.delete_metric(services, admin, metric_id)
    return {"deleted": metric_id}
