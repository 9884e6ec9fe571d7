"""Snapshots (server side): estimate, then stream a filtered subset of a remote table."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from agnes_mcp.api.arrow_stream import ARROW_STREAM, arrow_response
from agnes_mcp.api.dependencies import PrincipalDep, ServicesDep
from agnes_mcp.api.hang_up import unless_hung_up
from agnes_mcp.api.negotiation import chosen_type
from agnes_mcp.api.schemas import RequestBody
from agnes_mcp.query.concurrency import in_query_lane
from agnes_mcp.query.snapshots import Snapshots
from agnes_mcp.rails.snapshot_spec import SnapshotEstimate, SnapshotSpec
from agnes_sync.snapshot_files import NAME
from agnes_sync.snapshot_meta import SnapshotMeta

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
async def create(
    body: SnapshotBody, request: Request, services: ServicesDep, principal: PrincipalDep
) -> Response:
    """A client that disconnects before the answer stops the query (``query_cancelled``)."""
    chosen_type(request, (ARROW_STREAM,))  # Arrow only: a 406 runs nothing

    def work() -> Response:
        prepared, outcome = Snapshots(services.query).create(principal, body)
        answer = outcome.answer(sql=prepared.sql)
        metadata = {**answer.wire(), "table_id": prepared.table.id, "spec": body.model_dump()}
        return arrow_response(answer.table, metadata)

    return await unless_hung_up(request, in_query_lane(work))


class StoreBody(SnapshotSpec, RequestBody):
    """A snapshot to keep on the server, under a name."""

    name: str = Field(
        description="Lowercase letters, digits and '_'.",
        # documented; a name outside it is refused as snapshot_name_invalid, with its hint
        json_schema_extra={"pattern": NAME.pattern},
    )
    ttl_seconds: int | None = Field(default=None, ge=60)


class StoredSnapshot(SnapshotMeta):
    """A kept snapshot as the API shows it: its metadata and what to know about its rows."""

    notes: list[str] = Field(
        default_factory=list, description="E.g. that its own limit cut it, and how to get more."
    )

    @classmethod
    def of(cls, meta: SnapshotMeta, more: list[str] | None = None) -> StoredSnapshot:
        return cls(**dict(meta), notes=[*meta.cut_notes(), *(more or [])])


class StoredList(BaseModel):
    snapshots: list[StoredSnapshot]


@router.post("/stored", summary="Take a snapshot and keep it on the server")
def store(body: StoreBody, services: ServicesDep, principal: PrincipalDep) -> StoredSnapshot:
    spec = SnapshotSpec.model_validate(body.model_dump(include=set(SnapshotSpec.model_fields)))
    meta, outcome = services.stored_snapshots.create(principal, spec, body.name, body.ttl_seconds)
    return StoredSnapshot.of(meta, outcome.notes())


@router.get("/stored", summary="The caller's snapshots kept on the server")
def stored(services: ServicesDep, principal: PrincipalDep) -> StoredList:
    return StoredList(
        snapshots=[StoredSnapshot.of(m) for m in services.stored_snapshots.all(principal)]
    )


@router.get(
    "/stored/{name}",
    summary="Download a kept snapshot as parquet",
    responses={200: {"content": {"application/vnd.apache.parquet": {}}}},
)
def download(name: str, services: ServicesDep, principal: PrincipalDep) -> FileResponse:
    meta = services.stored_snapshots.get(principal, name)
    path = services.stored_snapshots.files(principal).data_path(meta.name)
    services.audit.record(principal, "snapshot.download", resource=meta.table_id)
    return FileResponse(
        path, media_type="application/vnd.apache.parquet", filename=f"{meta.name}.parquet"
    )


@router.delete("/stored/{name}", summary="Drop a kept snapshot")
def drop(name: str, services: ServicesDep, principal: PrincipalDep) -> SnapshotMeta:
    return services.stored_snapshots.drop(principal, name)
