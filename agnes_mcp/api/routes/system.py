"""Liveness and identity: ``/healthz`` (no auth) and ``/api/whoami``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from agnes_mcp import __version__
from agnes_mcp.api.dependencies import PrincipalDep, ServicesDep
from agnes_mcp.identity import WhoAmI, describe
from agnes_mcp.services import Services

router = APIRouter()


class Health(BaseModel):
    status: str
    version: str
    instance: str


@router.get("/healthz", tags=["system"], summary="Liveness (no auth)")
async def healthz(request: Request) -> Health:
    """Answered on the event loop itself: no thread, no dependency that needs one (a sync
    dependency such as ``ServicesDep`` runs in the thread pool the sync routes share), so
    liveness never waits behind busy threads."""
    services: Services = request.app.state.services
    return Health(status="ok", version=__version__, instance=services.settings.instance_name)


@router.get("/api/whoami", tags=["system"], summary="The caller: user, groups, token scopes")
async def whoami(services: ServicesDep, principal: PrincipalDep) -> WhoAmI:
    return describe(principal, services.groups.names())
