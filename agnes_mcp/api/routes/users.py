"""Admin: users."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from agnes_mcp import access_admin
from agnes_mcp.access_admin import UserWithGroups
from agnes_mcp.api.dependencies import AdminDep, ServicesDep
from agnes_mcp.api.schemas import RequestBody, plain_text

router = APIRouter(prefix="/api/admin/users", tags=["admin: users"])


class UserCreate(RequestBody):
    email: str = Field(description="E-mail address; unique.", max_length=254)
    # the bound inside the optional: outside, a long name was refused as "at most 200
    # items after validation" and the schema said no maxLength
    name: Annotated[str, StringConstraints(max_length=200), AfterValidator(plain_text)] | None = (
        None
    )
    groups: list[str] = Field(default_factory=list, description="Group names or ids to join.")


class UserList(BaseModel):
    users: list[UserWithGroups]


@router.get("", summary="List users")
def list_users(services: ServicesDep, _: AdminDep) -> UserList:
    return UserList(users=access_admin.users_with_groups(services))


@router.post("", status_code=201, summary="Add a user")
def add_user(body: UserCreate, services: ServicesDep, admin: AdminDep) -> UserWithGroups:
    return access_admin.add_user(services, admin, body.email, body.name, body.groups)


@router.get("/{ref}", summary="One user, by id or e-mail")
def get_user(ref: str, services: ServicesDep, _: AdminDep) -> UserWithGroups:
    return access_admin.user_with_groups(services, services.users.find(ref))


@router.post("/{ref}/deactivate", summary="Deactivate a user (their tokens stop working)")
def deactivate_user(ref: str, services: ServicesDep, admin: AdminDep) -> UserWithGroups:
    return access_admin.deactivate_user(services, admin, ref)


@router.post("/{ref}/activate", summary="Reactivate a user")
def activate_user(ref: str, services: ServicesDep, admin: AdminDep) -> UserWithGroups:
    return access_admin.activate_user(services, admin, ref)
