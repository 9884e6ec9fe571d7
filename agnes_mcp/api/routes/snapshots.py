"""Snapshots (server side): estimate, then stream a filtered subset of a remote table."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from agnes_mcp.api.arrow_stream import ARROW_STREAM, arrow_response
from agnes_mcp.api.dependencies import PrincipalDep, ServicesDep
from agnes_mcp.api.schemas import RequestBody
from agnes_mcp.query.snapshots import SnapshotEstimate, Snapshots, SnapshotSpec

router = APIRouter(prefix="/api/snapshots", tags=["snapshots"])


class SnapshotBody(SnapshotSpec, RequestBody):
    """A snapshot: table, columns, predicate in the table's SQL flavor, order, limit."""


@router.post("/estimate", summary="What a snapshot would scan and return, without running it")
def estimate(
    body: SnapshotBody, services: ServicesDep, principal: PrincipalDep
) -> SnapshotEstimate:
    return Snapshots(services.query).estimate(principal, body)


@router.post(
    "",
    summary="Create a snapshot: the rows stream back as Arrow IPC",
    responses={200: {"content": {ARROW_STREAM: {}}, "description": "Arrow IPC stream"}},
)
def create(
    body: SnapshotBody, request: Request, services: ServicesDep, principal: PrincipalDep
) -> Response:
    prepared, outcome = Snapshots(services.query).create(principal, body)
    result = outcome.result()
    metadata = {
        "table_id": prepared.table.id,
        "sql": prepared.sql,
        "row_count": result.row_count,
        "truncated": result.truncated,
        "bytes_scanned": result.bytes_scanned,
        "remaining_budget_bytes": result.remaining_budget_bytes,
        "provenance": result.provenance.model_dump(mode="json"),
        "spec": body.model_dump(),
    }
    return arrow_response(outcome.table, metadata)
