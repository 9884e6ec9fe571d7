"""Admin: OAuth grants of MCP clients (one per consent), listed and revoked."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from agnes_mcp import oauth_admin
from agnes_mcp.api.dependencies import AdminDep, ServicesDep
from agnes_mcp.oauth_admin import OAuthGrantInfo

router = APIRouter(prefix="/api/admin/oauth-grants", tags=["admin: oauth grants"])


class OAuthGrantList(BaseModel):
    grants: list[OAuthGrantInfo]


@router.get("", summary="List OAuth grants (every user's, or one user's)")
def list_grants(
    services: ServicesDep,
    admin: AdminDep,
    user: Annotated[str | None, Query(description="Id or e-mail: only this user's.")] = None,
    active: Annotated[bool, Query(description="Only grants not revoked.")] = False,
) -> OAuthGrantList:
    return OAuthGrantList(grants=oauth_admin.list_grants(services, admin, user, active_only=active))


@router.delete("/{grant_id}", summary="Revoke an OAuth grant (all of its tokens stop working)")
def revoke_grant(
    grant_id: str, services: ServicesDep, admin: AdminDep
) -> oauth_admin.OAuthGrantRevocation:
    return oauth_admin.revoke_as_admin(services, admin, grant_id)
