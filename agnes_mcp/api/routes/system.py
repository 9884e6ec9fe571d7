"""Liveness and identity: ``/healthz`` (no auth) and ``/api/whoami``; ``/favicon.ico``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
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


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> Response:
    """No icon: said with 204 (cached a day), so a browser showing any of the server's
    answers (a JSON error page too) logs no 404 on its console."""
    return Response(status_code=204, headers={"Cache-Control": "public, max-age=86400"})


@router.get("/api/whoami", tags=["system"], summary="The caller: user, groups, token scopes")
async def whoami(services: ServicesDep, principal: PrincipalDep) -> WhoAmI:
    return describe(principal, services.groups.names())
