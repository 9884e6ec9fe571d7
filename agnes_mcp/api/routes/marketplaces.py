"""Admin: plugin marketplaces (git repositories in Claude Code's marketplace format), over
:class:`~agnes_mcp.marketplace_admin.MarketplaceAdmin`, which the admin app calls too.

Syncs are only queued here (``202``): they run in the background and their outcome shows
in the marketplace's ``last_sync_*`` fields once ``state`` is ``idle`` again.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from agnes_mcp.api.dependencies import AdminDep, ServicesDep
from agnes_mcp.marketplace_admin import (
    MarketplaceAdmin,
    MarketplaceCreate,
    MarketplaceView,
    PluginRow,
    Removed,
    SyncQueued,
)

router = APIRouter(prefix="/api/admin/marketplaces", tags=["admin: marketplaces"])


class MarketplaceList(BaseModel):
    marketplaces: list[MarketplaceView]


class PluginList(BaseModel):
    plugins: list[PluginRow]


@router.get("", summary="List marketplaces with their sync state")
def list_marketplaces(services: ServicesDep, _: AdminDep) -> MarketplaceList:
    return MarketplaceList(marketplaces=MarketplaceAdmin(services).views())


@router.post("", status_code=201, summary="Register a marketplace (its first sync is queued)")
def add_marketplace(
    body: MarketplaceCreate, services: ServicesDep, admin: AdminDep
) -> MarketplaceView:
    """The URL is checked (https:// only unless ``marketplace.allow_local``; no credentials
    in it) and nothing is fetched before the answer. A read token is named by
    ``token_env``, the server environment variable holding it."""
    return MarketplaceAdmin(services).add(admin, body)


@router.post("/sync", status_code=202, summary="Queue a sync of every marketplace")
def sync_all(services: ServicesDep, admin: AdminDep) -> SyncQueued:
    return MarketplaceAdmin(services).sync(admin)


@router.get("/plugins", summary="Plugins of every marketplace and the groups granted each")
def all_plugins(services: ServicesDep, _: AdminDep) -> PluginList:
    return PluginList(plugins=MarketplaceAdmin(services).plugins())


@router.get("/{slug}", summary="One marketplace with its sync state")
def get_marketplace(slug: str, services: ServicesDep, _: AdminDep) -> MarketplaceView:
    return MarketplaceAdmin(services).view(slug)


@router.delete("/{slug}", summary="Remove a marketplace, its plugins and their grants")
def remove_marketplace(slug: str, services: ServicesDep, admin: AdminDep) -> Removed:
    return MarketplaceAdmin(services).remove(admin, slug)


@router.post("/{slug}/sync", status_code=202, summary="Queue a sync of one marketplace")
def sync_one(slug: str, services: ServicesDep, admin: AdminDep) -> SyncQueued:
    return MarketplaceAdmin(services).sync(admin, slug)


@router.get("/{slug}/plugins", summary="Plugins of one marketplace and the groups granted each")
def marketplace_plugins(slug: str, services: ServicesDep, _: AdminDep) -> PluginList:
    return PluginList(plugins=MarketplaceAdmin(services).plugins(slug))
