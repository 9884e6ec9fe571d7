"""The catalog for clients (the workspace MCP backend, the CLI): tables the caller may use,
a table's schema, a few sample rows."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from agnes_mcp.api.arrow_stream import ARROW_STREAM, arrow_response
from agnes_mcp.api.dependencies import PrincipalDep, ServicesDep
from agnes_mcp.api.json_stream import json_response
from agnes_mcp.api.negotiation import wants_arrow
from agnes_mcp.catalog_models import MAX_SAMPLE_ROWS, MAX_SEARCH_CHARS, CatalogEntry, TableSchema
from agnes_mcp.metrics.summary import MetricSummary
from agnes_mcp.rails.results import QueryResult

router = APIRouter(prefix="/api/catalog", tags=["catalog"])


class CatalogResponse(BaseModel):
    tables: list[CatalogEntry]
    metrics: list[MetricSummary]


@router.get("", summary="Tables and metrics the caller may use")
def catalog(
    services: ServicesDep,
    principal: PrincipalDep,
    search: str | None = Query(default=None, max_length=MAX_SEARCH_CHARS),
    query_mode: Literal["local", "materialized", "remote"] | None = None,
) -> CatalogResponse:
    return CatalogResponse(
        tables=services.catalog_view.entries(principal, search, query_mode),
        metrics=services.metric_service.summaries(principal, search),
    )


@router.get("/{table_id:path}/schema", summary="A table's columns, types and profile stats")
def schema(table_id: str, services: ServicesDep, principal: PrincipalDep) -> TableSchema:
    return services.catalog_view.schema(principal, table_id)


@router.get(
    "/{table_id:path}/describe",
    response_model=QueryResult,
    summary="A few rows of a table (remote tables: the warehouse's free preview)",
    responses={
        200: {"content": {ARROW_STREAM: {}}, "description": "JSON, or Arrow IPC on request"}
    },
)
def describe(
    table_id: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    n: int = Query(default=5, ge=1, le=MAX_SAMPLE_ROWS),
) -> Response:
    arrow = wants_arrow(request)  # before any work: a 406 reads nothing
    answer = services.catalog_view.describe(principal, table_id, n)
    if arrow:
        return arrow_response(answer.table, answer.wire())
    return json_response(answer.table, answer.byte_limit, answer.described)
