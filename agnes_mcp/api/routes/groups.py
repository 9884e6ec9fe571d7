"""Admin: groups and their members."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from agnes_mcp import access_admin
from agnes_mcp.access_admin import GroupMembers
from agnes_mcp.api.dependencies import AdminDep, ServicesDep
from agnes_mcp.api.schemas import Deleted, PlainText, RequestBody
from agnes_mcp.store.groups import Group, Membership

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


def _member_list(found: GroupMembers) -> MemberList:
    return MemberList(group=found.group, members=found.members)


@router.get("", summary="List groups")
def list_groups(services: ServicesDep, _: AdminDep) -> GroupList:
    return GroupList(groups=services.groups.all())


@router.post("", status_code=201, summary="Create a group")
def create_group(body: GroupCreate, services: ServicesDep, admin: AdminDep) -> Group:
    return access_admin.create_group(services, admin, body.name, body.description)


@router.delete("/{ref}", summary="Delete a group, its memberships and its grants")
def delete_group(ref: str, services: ServicesDep, admin: AdminDep) -> Deleted:
    return Deleted(deleted=access_admin.delete_group(services, admin, ref).id)


@router.get("/{ref}/members", summary="Members of a group")
def members(ref: str, services: ServicesDep, _: AdminDep) -> MemberList:
    group = services.groups.find(ref)
    return MemberList(group=group, members=services.groups.members(group.id))


@router.post(
    "/{ref}/members", status_code=201, summary="Add a member (as an admin-made membership)"
)
def add_member(ref: str, body: MemberAdd, services: ServicesDep, admin: AdminDep) -> MemberList:
    return _member_list(access_admin.add_member(services, admin, ref, body.user))


@router.delete("/{ref}/members/{user_ref}", summary="Remove an admin-made membership")
def remove_member(ref: str, user_ref: str, services: ServicesDep, admin: AdminDep) -> MemberList:
    return _member_list(access_admin.remove_member(services, admin, ref, user_ref))
