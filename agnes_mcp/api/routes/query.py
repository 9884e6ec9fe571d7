"""Queries: server-side SQL over the tables the caller is granted, and scan estimates.

The routes are async and hand their work (the query and rendering its rows) to the query
lane (:mod:`agnes_mcp.query.concurrency`): a slow query holds a lane thread, never one of
the threads the other routes share. A query whose client hangs up is interrupted
(:mod:`agnes_mcp.api.hang_up`).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from agnes_mcp.api.arrow_stream import ARROW_STREAM, arrow_response
from agnes_mcp.api.dependencies import PrincipalDep, ServicesDep
from agnes_mcp.api.hang_up import unless_hung_up
from agnes_mcp.api.json_stream import json_response
from agnes_mcp.api.negotiation import wants_arrow
from agnes_mcp.api.schemas import RequestBody
from agnes_mcp.query.concurrency import in_query_lane
from agnes_mcp.query.hybrid import MAX_REMOTE_PARTS, hybrid
from agnes_mcp.rails.outcome import Outcome
from agnes_mcp.rails.refusals import TableNotFound
from agnes_mcp.rails.results import QueryResult

router = APIRouter(prefix="/api/query", tags=["query"])


class QueryRequest(RequestBody):
    sql: str = Field(
        min_length=1, description="One SELECT (the rails take up to 100,000 characters)."
    )
    limit: int | None = Field(default=None, ge=1, description="Most rows to return.")
    mode: Literal["auto", "local", "remote"] = Field(
        default="auto",
        description="local: server tables only; remote: one warehouse, under the scan cap; "
        "auto: whichever the tables need.",
    )


class EstimateRequest(RequestBody):
    sql: str = Field(min_length=1)


class EstimateResponse(BaseModel):
    estimated_scan_bytes: int
    limit_bytes: int
    remaining_budget_bytes: int
    engine: str
    tables: list[str]
    estimated_result_rows: int | None
    detail: dict[str, Any]


def respond(arrow: bool, outcome: Outcome) -> Response:
    if arrow:
        answer = outcome.answer()
        return arrow_response(answer.table, answer.wire())
    return json_response(outcome.table, outcome.limits.bytes, outcome.described)


@router.post(
    "",
    response_model=QueryResult,
    summary="Run one SELECT through the rails",
    responses={
        200: {"content": {ARROW_STREAM: {}}, "description": "JSON, or Arrow IPC on request"}
    },
)
async def query(
    body: QueryRequest, request: Request, services: ServicesDep, principal: PrincipalDep
) -> Response:
    """Local and materialized tables run in a sandbox holding only your tables; remote
    tables run in their warehouse under the scan cap and your daily budget. Over the
    number of queries you (or the server) may run at once: ``429 too_many_queries`` with
    ``Retry-After``."""
    arrow = wants_arrow(request)  # before any work: a 406 runs nothing

    def work() -> Response:
        # your snapshots kept on the server and the results kept for your token (an
        # agent's large answers) read by name, as through MCP (docs/api.md)
        mine = services.own_tables(principal) if body.mode != "remote" else None
        try:
            outcome = services.query.run(
                principal, body.sql, limit=body.limit, mode=body.mode, extras=mine
            )
        except TableNotFound as missing:
            raise services.stored_snapshots.missing_said(principal, missing) from None
        return respond(arrow, outcome)

    return await unless_hung_up(request, in_query_lane(work))


class HybridRequest(RequestBody):
    sql: str = Field(min_length=1, description="Runs on the server.")
    register_remote: dict[str, str] = Field(
        description="alias -> remote SQL; each result is a table named alias in sql.",
        # documented bounds; the service refuses others with its own typed error
        json_schema_extra={"minProperties": 1, "maxProperties": MAX_REMOTE_PARTS},
    )
    limit: int | None = Field(default=None, ge=1)


@router.post("/hybrid", response_model=QueryResult, summary="Admins: join remote results locally")
async def hybrid_query(
    body: HybridRequest, request: Request, services: ServicesDep, principal: PrincipalDep
) -> Response:
    """Each remote sub-query runs under the caps; the results are registered as tables
    named by their alias for ``sql``, which runs with the server's local tables."""
    arrow = wants_arrow(request)

    def work() -> Response:
        outcome = hybrid(
            services.query, principal, body.sql, body.register_remote, limit=body.limit
        )
        return respond(arrow, outcome)

    return await unless_hung_up(request, in_query_lane(work))


@router.post("/estimate", summary="What a query would scan, without running it")
async def estimate(
    body: EstimateRequest, services: ServicesDep, principal: PrincipalDep
) -> EstimateResponse:
    result = await in_query_lane(services.query.estimate, principal, body.sql)
    return EstimateResponse(
        estimated_scan_bytes=result.scan_bytes,
        limit_bytes=result.limit_bytes,
        remaining_budget_bytes=result.remaining_budget_bytes,
        engine=result.engine,
        tables=result.tables,
        estimated_result_rows=result.result_rows,
        detail=result.detail,
    )
