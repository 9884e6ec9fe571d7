"""Sync: trigger runs, see status and history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from agnes_mcp.api.dependencies import AdminDep, PrincipalDep, ServicesDep
from agnes_mcp.api.schemas import RequestBody
from agnes_mcp.registry_admin import RegistryAdmin, TriggerResult
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.store.sync_state import SyncRun

router = APIRouter(prefix="/api/sync", tags=["sync"])


class TriggerRequest(RequestBody):
    table_id: str | None = Field(default=None, description="One table; all tables if omitted.")
    wait: bool = Field(default=True, description="Wait for the results (else 202 and run on).")


class TableStatus(BaseModel):
    table_id: str
    query_mode: str
    source_type: str
    sync_schedule: str | None
    status: str
    running: bool
    last_started_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    rows: int | None
    size_bytes: int | None
    next_run: datetime | None


class ConflictInfo(BaseModel):
    table: str
    kept_source: str
    dropped_source: str


class SyncStatus(BaseModel):
    tables: list[TableStatus]
    conflicts: list[ConflictInfo] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)


class SyncHistory(BaseModel):
    runs: list[SyncRun]


@router.post("/trigger", summary="Sync one table or all tables now")
def trigger(
    body: TriggerRequest, services: ServicesDep, admin: AdminDep, response: Response
) -> TriggerResult:
    result = RegistryAdmin(services).trigger(admin, body.table_id, wait=body.wait)
    if not body.wait:
        response.status_code = 202
    return result


@router.get("/status", summary="Sync state of the tables you may use (admins: all, plus conflicts)")
def status(services: ServicesDep, principal: PrincipalDep) -> SyncStatus:
    granted = services.access.granted(principal, ResourceType.TABLE)
    states = services.sync_states.all()
    running = services.sync.scheduler.running()
    tables = []
    for table in services.registry.all():
        if granted is not None and table.id not in granted:
            continue
        state = states.get(table.id)
        tables.append(
            TableStatus(
                table_id=table.id,
                query_mode=table.query_mode.value,
                source_type=table.source_type,
                sync_schedule=table.sync_schedule,
                status=state.status if state else "never",
                running=table.id in running,
                last_started_at=state.last_started_at if state else None,
                last_success_at=state.last_success_at if state else None,
                last_error=state.last_error if state and principal.is_admin else None,
                rows=state.rows if state else None,
                size_bytes=state.size_bytes if state else None,
                next_run=services.sync.next_run(table),
            )
        )
    if not principal.is_admin:
        return SyncStatus(tables=tables)
    conflicts = [
        ConflictInfo(table=c.table, kept_source=c.kept_source, dropped_source=c.dropped_source)
        for c in services.orchestrator.conflicts()
    ]
    return SyncStatus(tables=tables, conflicts=conflicts, problems=services.orchestrator.problems())


@router.get("/history", summary="Past sync runs, newest first")
def history(
    services: ServicesDep,
    _: AdminDep,
    table: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most runs to list.")] = 50,
) -> SyncHistory:
    return SyncHistory(runs=RegistryAdmin(services).history(table, limit=limit))
