"""Admin: users."""

from __future__ import annotations

import time

from fastapi import APIRouter
from pydantic import BaseModel, Field

from agnes_mcp.api.dependencies import AdminDep, ServicesDep
from agnes_mcp.api.schemas import PlainText, RequestBody
from agnes_mcp.store.groups import MembershipSource
from agnes_mcp.store.users import User

router = APIRouter(prefix="/api/admin/users", tags=["admin: users"])


class UserCreate(RequestBody):
    email: str = Field(description="E-mail address; unique.", max_length=254)
    name: PlainText | None = Field(default=None, max_length=200)
    groups: list[str] = Field(default_factory=list, description="Group names or ids to join.")


class UserWithGroups(User):
    groups: list[str]


class UserList(BaseModel):
    users: list[UserWithGroups]


def _with_groups(services: ServicesDep, user: User) -> UserWithGroups:
    names = services.groups.names()
    groups = sorted(names[g] for g in services.groups.group_ids_of(user.id) if g in names)
    return UserWithGroups(**user.model_dump(), groups=groups)


@router.get("", summary="List users")
def list_users(services: ServicesDep, _: AdminDep) -> UserList:
    return UserList(users=[_with_groups(services, u) for u in services.users.all()])


@router.post("", status_code=201, summary="Add a user")
def add_user(body: UserCreate, services: ServicesDep, admin: AdminDep) -> UserWithGroups:
    started = time.perf_counter()
    groups = [services.groups.find(ref) for ref in body.groups]  # all resolved before any write
    user = services.users.add(body.email, body.name, added_by=admin.user_id)
    for group in groups:
        if group.id != "everyone":
            services.groups.add_member(
                group.id, user.id, MembershipSource.ADMIN, added_by=admin.user_id
            )
    services.audit.record(
        admin, "user.add", resource=user.id, params={"email": user.email}, started=started
    )
    return _with_groups(services, user)


@router.get("/{ref}", summary="One user, by id or e-mail")
def get_user(ref: str, services: ServicesDep, _: AdminDep) -> UserWithGroups:
    return _with_groups(services, services.users.find(ref))


@router.post("/{ref}/deactivate", summary="Deactivate a user (their tokens stop working)")
def deactivate_user(ref: str, services: ServicesDep, admin: AdminDep) -> UserWithGroups:
    user = services.users.set_active(services.users.find(ref).id, False)
    services.web_sessions.sign_out_user(user.id)
    services.audit.record(admin, "user.deactivate", resource=user.id)
    return _with_groups(services, user)


@router.post("/{ref}/activate", summary="Reactivate a user")
def activate_user(ref: str, services: ServicesDep, admin: AdminDep) -> UserWithGroups:
    user = services.users.set_active(services.users.find(ref).id, True)
    services.audit.record(admin, "user.activate", resource=user.id)
    return _with_groups(services, user)
