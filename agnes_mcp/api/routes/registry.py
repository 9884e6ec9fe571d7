"""Admin: the table registry and the configured sources (over
:class:`~agnes_mcp.registry_admin.RegistryAdmin`, which the admin app calls too)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Response
from pydantic import BaseModel, create_model

from agnes_mcp.api.dependencies import AdminDep, ServicesDep
from agnes_mcp.api.schemas import Deleted, RequestBody
from agnes_mcp.registry_admin import Registered, RegistryAdmin, RegistryEntry, SourceTables
from agnes_mcp.sources import SourceInfo
from agnes_sync.table_spec import QueryMode, TableSpec, change_fields

router = APIRouter(tags=["admin: registry"])


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
    result = RegistryAdmin(services).register(admin, body, dry_run=dry_run, sync=sync)
    if dry_run:
        response.status_code = 200
    return result


@router.get("/api/admin/registry", summary="Every registered table with its sync state")
def list_registry(
    services: ServicesDep,
    _: AdminDep,
    source: str | None = None,
    mode: QueryMode | None = None,
    status: str | None = None,
) -> RegistryList:
    """Optionally only the tables of one source, query mode or sync status
    (``never``, ``running``, ``ok``, ``error``)."""
    entries = RegistryAdmin(services).entries(
        source=source, mode=mode.value if mode else None, status=status
    )
    return RegistryList(tables=entries)


@router.put("/api/admin/registry/{table_id}", summary="Change a registered table")
def update_table(
    table_id: str, body: TableUpdate, services: ServicesDep, admin: AdminDep
) -> Registered:
    return RegistryAdmin(services).update(admin, table_id, body.model_dump(exclude_unset=True))


@router.delete("/api/admin/registry/{table_id}", summary="Unregister a table and drop its data")
def unregister_table(table_id: str, services: ServicesDep, admin: AdminDep) -> Deleted:
    RegistryAdmin(services).unregister(admin, table_id)
    return Deleted(deleted=table_id)


@router.get("/api/admin/sources", summary="Configured data sources")
def list_sources(services: ServicesDep, _: AdminDep) -> SourceList:
    return SourceList(sources=RegistryAdmin(services).sources())


@router.get("/api/admin/sources/{source}/tables", summary="Tables a source offers")
def source_tables(source: str, services: ServicesDep, _: AdminDep) -> SourceTables:
    return RegistryAdmin(services).source_tables(source)
