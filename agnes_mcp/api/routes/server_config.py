"""Admin: settings that change while the server runs (scan caps, agent instructions)."""

from __future__ import annotations

from fastapi import APIRouter

from agnes_mcp.api.dependencies import AdminDep, ServicesDep
from agnes_mcp.server_config_admin import ConfigUpdate, ServerConfig, current_config, update_config

router = APIRouter(prefix="/api/admin/server-config", tags=["admin: server config"])


@router.get("", summary="Effective run-time settings and the overrides in force")
def show(services: ServicesDep, _: AdminDep) -> ServerConfig:
    return current_config(services)


@router.put("", summary="Change run-time settings (takes effect at once)")
def update(body: ConfigUpdate, services: ServicesDep, admin: AdminDep) -> ServerConfig:
    """Takes effect at once: new MCP sessions and ``agnes init`` runs get new instructions.
    The caps are written together: a bad value changes nothing."""
    return update_config(services, admin, body)
