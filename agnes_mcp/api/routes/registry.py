"""Admin: the table registry and the configured sources."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, create_model

from agnes_mcp.api.dependencies import AdminDep, ServicesDep
from agnes_mcp.api.schemas import Deleted, RequestBody
from agnes_mcp.catalog_models import ColumnInfo
from agnes_mcp.errors import TableExists, TableNotRegistered
from agnes_mcp.sources import SourceInfo
from agnes_mcp.store.ids import utcnow
from agnes_mcp.store.sync_state import SyncState
from agnes_mcp.store.table_registry import TableRegistration
from agnes_sync.contract import ExtractWriter
from agnes_sync.table_spec import TableSpec, change_fields

router = APIRouter(tags=["admin: registry"])


class Registered(BaseModel):
    table: TableRegistration
    columns: list[ColumnInfo]
    dry_run: bool
    initial_sync: str | None = Field(default=None, description="'queued' when a sync started.")


class RegistryEntry(TableRegistration):
    sync: SyncState | None
    next_run: datetime | None


class RegistryList(BaseModel):
    tables: list[RegistryEntry]


if TYPE_CHECKING:
    TableUpdate = RequestBody  # to mypy; at run time it holds the spec's fields, all optional
else:
    TableUpdate = create_model(
        "TableUpdate",
        __base__=RequestBody,
        __doc__="Fields to change; those left out keep their value. The id cannot change.",
        __module__=__name__,
        **change_fields(),
    )


class SourceList(BaseModel):
    sources: list[SourceInfo]


class SourceTableInfo(BaseModel):
    source_table: str
    bucket: str | None
    suggested_id: str | None
    description: str


class SourceTables(BaseModel):
    source: str
    tables: list[SourceTableInfo]


@router.post("/api/admin/register-table", status_code=201, summary="Register a table")
def register_table(
    body: TableSpec,
    services: ServicesDep,
    admin: AdminDep,
    response: Response,
    dry_run: bool = False,
    sync: bool = True,
) -> Registered:
    """Validates against the source (the table exists, named columns exist) before storing.
    With ``dry_run`` nothing is stored. Unless ``sync=false``, a first sync starts at once."""
    try:
        services.registry.get(body.id)
    except TableNotRegistered:
        pass
    else:
        raise TableExists(
            f"A table '{body.id}' is already registered.",
            hint="Change it with 'agnes admin update-table', or pick another name.",
        )
    columns = services.sync.validate(body)
    if dry_run:
        response.status_code = 200
        draft = TableRegistration(
            **body.model_dump(), registered_by=admin.user_id, registered_at=utcnow()
        )
        if not draft.name:
            draft.name = draft.id
        return Registered(table=draft, columns=columns, dry_run=True)
    table = services.registry.add(body, registered_by=admin.user_id)
    services.audit.record(
        admin,
        "registry.register",
        resource=table.id,
        params={"source": table.source_type},
    )
    queued = None
    if sync:
        services.sync.scheduler.trigger(table.id, "registration")
        queued = "queued"
    return Registered(table=table, columns=columns, dry_run=False, initial_sync=queued)


@router.get("/api/admin/registry", summary="Every registered table with its sync state")
def list_registry(services: ServicesDep, _: AdminDep) -> RegistryList:
    states = services.sync_states.all()
    return RegistryList(
        tables=[
            RegistryEntry(
                **t.model_dump(), sync=states.get(t.id), next_run=services.sync.next_run(t)
            )
            for t in services.registry.all()
        ]
    )


@router.put("/api/admin/registry/{table_id}", summary="Change a registered table")
def update_table(
    table_id: str, body: TableUpdate, services: ServicesDep, admin: AdminDep
) -> Registered:
    current = services.registry.get(table_id)
    changes = body.model_dump(exclude_unset=True)
    spec = TableSpec(
        **{
            **current.model_dump(exclude={"registered_by", "registered_at"}),
            **changes,
            "id": table_id,
        }
    )
    columns = services.sync.validate(spec)
    updated = services.registry.update(spec)
    if (
        current.source_type != updated.source_type
        and (services.settings.extracts_dir / current.source_type).is_dir()
    ):
        ExtractWriter(services.settings.extracts_dir, current.source_type).drop(table_id)
        services.orchestrator.rebuild_source(current.source_type)
    services.audit.record(
        admin, "registry.update", resource=table_id, params={"changed": sorted(changes)}
    )
    return Registered(table=updated, columns=columns, dry_run=False)


@router.delete("/api/admin/registry/{table_id}", summary="Unregister a table and drop its data")
def unregister_table(table_id: str, services: ServicesDep, admin: AdminDep) -> Deleted:
    services.sync.unregister(table_id)
    services.audit.record(admin, "registry.unregister", resource=table_id)
    return Deleted(deleted=table_id)


@router.get("/api/admin/sources", summary="Configured data sources")
def list_sources(services: ServicesDep, _: AdminDep) -> SourceList:
    return SourceList(sources=services.sources.describe())


@router.get("/api/admin/sources/{source}/tables", summary="Tables a source offers")
def source_tables(source: str, services: ServicesDep, _: AdminDep) -> SourceTables:
    offered = services.sources.connector(source).list_tables()
    return SourceTables(
        source=source,
        tables=[
            SourceTableInfo(
                source_table=t.source_table,
                bucket=t.bucket,
                suggested_id=t.suggested_id,
                description=t.description,
            )
            for t in offered
        ],
    )
