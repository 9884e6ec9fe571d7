"""Admin: groups and their members."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from agnes_mcp.api.dependencies import AdminDep, ServicesDep
from agnes_mcp.api.schemas import Deleted, PlainText, RequestBody
from agnes_mcp.store.groups import Group, Membership, MembershipSource

router = APIRouter(prefix="/api/admin/groups", tags=["admin: groups"])


class GroupCreate(RequestBody):
    name: str = Field(min_length=1, max_length=64)
    description: PlainText = Field(default="", max_length=500)


class MemberAdd(RequestBody):
    user: str = Field(description="User id or e-mail.")


class GroupList(BaseModel):
    groups: list[Group]


class MemberList(BaseModel):
    group: Group
    members: list[Membership]


@router.get("", summary="List groups")
def list_groups(services: ServicesDep, _: AdminDep) -> GroupList:
    return GroupList(groups=services.groups.all())


@router.post("", status_code=201, summary="Create a group")
def create_group(body: GroupCreate, services: ServicesDep, admin: AdminDep) -> Group:
    group = services.groups.add(body.name, body.description)
    services.audit.record(admin, "group.create", resource=group.id, params={"name": group.name})
    return group


@router.delete("/{ref}", summary="Delete a group, its memberships and its grants")
def delete_group(ref: str, services: ServicesDep, admin: AdminDep) -> Deleted:
    group = services.groups.find(ref)
    services.groups.delete(group.id)
    services.audit.record(admin, "group.delete", resource=group.id, params={"name": group.name})
    return Deleted(deleted=group.id)


@router.get("/{ref}/members", summary="Members of a group")
def members(ref: str, services: ServicesDep, _: AdminDep) -> MemberList:
    group = services.groups.find(ref)
    return MemberList(group=group, members=services.groups.members(group.id))


@router.post(
    "/{ref}/members", status_code=201, summary="Add a member (as an admin-made membership)"
)
def add_member(ref: str, body: MemberAdd, services: ServicesDep, admin: AdminDep) -> MemberList:
    group = services.groups.find(ref)
    user = services.users.find(body.user)
    services.groups.add_member(group.id, user.id, MembershipSource.ADMIN, added_by=admin.user_id)
    services.audit.record(admin, "group.add_member", resource=group.id, params={"user": user.id})
    return MemberList(
        group=services.groups.get(group.id), members=services.groups.members(group.id)
    )


@router.delete("/{ref}/members/{user_ref}", summary="Remove an admin-made membership")
def remove_member(ref: str, user_ref: str, services: ServicesDep, admin: AdminDep) -> MemberList:
    group = services.groups.find(ref)
    user = services.users.find(user_ref)
    services.groups.remove_member(group.id, user.id, MembershipSource.ADMIN)
    services.audit.record(admin, "group.remove_member", resource=group.id, params={"user": user.id})
    return MemberList(
        group=services.groups.get(group.id), members=services.groups.members(group.id)
    )
