"""Admin: grants of resources to groups."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from agnes_mcp import access_admin
from agnes_mcp.api.dependencies import AdminDep, ServicesDep
from agnes_mcp.api.schemas import Deleted, RequestBody
from agnes_mcp.resource_types import all_specs
from agnes_mcp.store.grants import Grant

router = APIRouter(prefix="/api/admin", tags=["admin: grants"])


class GrantCreate(RequestBody):
    group: str = Field(description="Group name or id.")
    resource_type: str = Field(description="E.g. 'table'; see /api/admin/resource-types.")
    resource_id: str = Field(min_length=1, max_length=200)


class GrantList(BaseModel):
    grants: list[Grant]


class ResourceTypeInfo(BaseModel):
    type: str
    label: str
    description: str


class ResourceTypeList(BaseModel):
    resource_types: list[ResourceTypeInfo]


@router.get("/grants", summary="List grants, optionally of one group or resource type")
def list_grants(
    services: ServicesDep, _: AdminDep, group: str | None = None, resource_type: str | None = None
) -> GrantList:
    return GrantList(grants=access_admin.list_grants(services, group, resource_type))


@router.post("/grants", status_code=201, summary="Grant a resource to a group")
def create_grant(body: GrantCreate, services: ServicesDep, admin: AdminDep) -> Grant:
    return access_admin.add_grant(services, admin, body.group, body.resource_type, body.resource_id)


@router.delete("/grants/{grant_id}", summary="Remove a grant")
def delete_grant(grant_id: str, services: ServicesDep, admin: AdminDep) -> Deleted:
    return Deleted(deleted=access_admin.remove_grant(services, admin, grant_id).id)


@router.get("/resource-types", summary="Kinds of resource that can be granted")
def resource_types(_: AdminDep) -> ResourceTypeList:
    return ResourceTypeList(
        resource_types=[
            ResourceTypeInfo(type=s.type.value, label=s.label, description=s.description)
            for s in all_specs()
        ]
    )
