"""The catalog for clients (the workspace MCP backend, the CLI): tables the caller may use,
a table's schema, a few sample rows."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel

from agnes_mcp.api.arrow_stream import ARROW_STREAM, arrow_response
from agnes_mcp.api.dependencies import PrincipalDep, ServicesDep
from agnes_mcp.api.routes.query import arrow_metadata
from agnes_mcp.catalog_models import CatalogEntry, TableSchema
from agnes_mcp.catalog_view import preview_provenance
from agnes_mcp.mcp_server.server_backend import metric_summary
from agnes_mcp.mcp_server.tool_models import MetricSummary
from agnes_sync.sql_text import quote_ident

router = APIRouter(prefix="/api/catalog", tags=["catalog"])


class CatalogResponse(BaseModel):
    tables: list[CatalogEntry]
    metrics: list[MetricSummary]


@router.get("", summary="Tables and metrics the caller may use")
def catalog(
    services: ServicesDep,
    principal: PrincipalDep,
    search: str | None = Query(default=None, max_length=200),
    query_mode: Literal["local", "materialized", "remote"] | None = None,
) -> CatalogResponse:
    tables = services.catalog_view.entries(principal, search, query_mode)
    metrics = services.metric_service.visible(principal, search)
    return CatalogResponse(tables=tables, metrics=[metric_summary(m) for m in metrics])


@router.get("/{table_id}/schema", summary="A table's columns, types and profile stats")
def schema(table_id: str, services: ServicesDep, principal: PrincipalDep) -> TableSchema:
    return services.catalog_view.schema(principal, table_id)


@router.get(
    "/{table_id}/describe",
    summary="A few rows of a table (remote tables: the warehouse's free preview)",
    responses={200: {"content": {ARROW_STREAM: {}}, "description": "Arrow IPC stream"}},
)
def describe(
    table_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    n: int = Query(default=5, ge=1, le=100),
) -> Response:
    table = services.catalog_view.table(principal, table_id)
    if table.is_remote:
        result = services.catalog_view.preview(principal, table, n)
        metadata = {
            "row_count": result.table.num_rows,
            "truncated": result.truncated,
            "reason": result.reason,
            "provenance": preview_provenance(table, result).model_dump(mode="json"),
        }
        return arrow_response(result.table, metadata)
    outcome = services.query.run(
        principal,
        f"SELECT * FROM {quote_ident(table.id)} LIMIT {n}",
        limit=n,
        mode="local",
        action="describe",
    )
    return arrow_response(outcome.table, arrow_metadata(outcome))
