"""Admin: grants of resources to groups."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from agnes_mcp.api.dependencies import AdminDep, ServicesDep
from agnes_mcp.api.schemas import Deleted, RequestBody
from agnes_mcp.resource_types import all_specs, parse_resource_type
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
    group_id = services.groups.find(group).id if group else None
    kind = parse_resource_type(resource_type) if resource_type else None
    return GrantList(grants=services.grants.all(group_id=group_id, resource_type=kind))


@router.post("/grants", status_code=201, summary="Grant a resource to a group")
def create_grant(body: GrantCreate, services: ServicesDep, admin: AdminDep) -> Grant:
    group = services.groups.find(body.group)
    kind = parse_resource_type(body.resource_type)
    grant = services.grants.add(group.id, kind, body.resource_id, granted_by=admin.user_id)
    services.audit.record(
        admin,
        "grant.create",
        resource=grant.id,
        params={"group": group.id, "resource_type": kind.value, "resource_id": body.resource_id},
    )
    return grant


@router.delete("/grants/{grant_id}", summary="Remove a grant")
def delete_grant(grant_id: str, services: ServicesDep, admin: AdminDep) -> Deleted:
    services.grants.delete(grant_id)
    services.audit.record(admin, "grant.delete", resource=grant_id)
    return Deleted(deleted=grant_id)


@router.get("/resource-types", summary="Kinds of resource that can be granted")
def resource_types(_: AdminDep) -> ResourceTypeList:
    return ResourceTypeList(
        resource_types=[
            ResourceTypeInfo(type=s.type.value, label=s.label, description=s.description)
            for s in all_specs()
        ]
    )
