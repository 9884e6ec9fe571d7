"""The one ASGI app: FastAPI hosts the REST API, the MCP app is mounted at ``/mcp``.

Middleware, outermost first: ``HEAD`` served as ``GET`` without its body, request context
(client IP; ``/mcp`` served without a redirect), Host/Origin guard (DNS-rebinding
protection for every route and websocket), body size limit, the admin gate (``/admin*``
and Panel's routes: signed-in admins only, ``agnes_mcp.api.admin_gate``), bearer-token gate
for ``/mcp`` (errors in the API's JSON shape).

Web apps (the Panel admin app) are found through the ``agnes.web_apps`` entry points and
never imported by name: each entry point is ``install(app, services)``, and the admin app
mounts itself in the background (Panel takes seconds to import) and reports to
``app.state.admin_readiness``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import entry_points

from fastapi import FastAPI

from agnes_mcp import __version__
from agnes_mcp.api.admin_gate import AdminGate, AdminReadiness
from agnes_mcp.api.body_limit import BodyLimit
from agnes_mcp.api.docs_assets import install_docs
from agnes_mcp.api.error_handlers import install_error_handlers
from agnes_mcp.api.head_as_get import HeadAsGet
from agnes_mcp.api.host_guard import HostOriginGuard, allowed_hosts_for
from agnes_mcp.api.jsonrpc_invalid import JsonRpcInvalidRequest
from agnes_mcp.api.mcp_batches import JsonRpcBatches
from agnes_mcp.api.mcp_content_type import JsonContentType
from agnes_mcp.api.mcp_cors import McpCors
from agnes_mcp.api.mcp_ended_session import EndedSessionAnswers
from agnes_mcp.api.mcp_error_shape import install_mcp_error_shape, one_body_limit
from agnes_mcp.api.mcp_gate import McpAuthGate
from agnes_mcp.api.mcp_hang_up import CancelOnHangUp
from agnes_mcp.api.mcp_no_resume import NoResume
from agnes_mcp.api.mcp_request_ids import OneRequestPerId
from agnes_mcp.api.mcp_session_versions import NegotiatedVersions, SessionVersions
from agnes_mcp.api.mcp_versions import UnknownProtocolVersion
from agnes_mcp.api.request_context import RequestContextMiddleware
from agnes_mcp.api.routes import (
    audit,
    catalog,
    distribution,
    grants,
    groups,
    marketplaces,
    metrics,
    oauth_grants,
    query,
    registry,
    server_config,
    session_export,
    snapshots,
    sync,
    system,
    tokens,
    users,
    webhooks,
    well_known,
)
from agnes_mcp.api.routes.well_known import MCP_PATH, METADATA_PATH
from agnes_mcp.api.schemas import ERROR_RESPONSES, with_json_errors
from agnes_mcp.google_groups import routes as group_sync_routes
from agnes_mcp.marketplace import routes as marketplace_routes
from agnes_mcp.mcp_server.server import build_mcp
from agnes_mcp.mcp_server.session_limit import limit_sessions_per_user, session_manager_of
from agnes_mcp.me import routes as me_routes
from agnes_mcp.oauth.provider import AgnesAuthorizationServer
from agnes_mcp.oauth.routes import install_oauth
from agnes_mcp.services import Services
from agnes_mcp.signin import routes as signin_routes

logger = logging.getLogger("agnes.serve")

OPENAPI_PATH = "/api/openapi.json"
WEB_APPS_GROUP = "agnes.web_apps"
DESCRIPTION = (
    "**Authentication.** Every route except `/healthz`, the docs and the OAuth discovery "
    "documents under `/.well-known/` needs `Authorization: Bearer <token>`, a personal "
    "access token: create one on `/me`, or an admin runs "
    "`agnes admin token create --user EMAIL`. The MCP endpoint, `/mcp`, takes the same "
    "tokens, and OAuth access tokens: MCP clients sign in through the authorization server "
    "named in `/.well-known/oauth-protected-resource/mcp` (registration, consent in the "
    "browser, PKCE)."
)


def create_app(services: Services, on_started: Callable[[], None] | None = None) -> FastAPI:
    """The app; ``on_started`` runs once startup has finished (e.g. to print a banner)."""
    mcp_app = build_mcp(services).http_app(
        path="/",
        # Plain JSON answers (no SSE framing): the tools send no progress events, and this
        # halves a small call's time on loopback (5.4 -> 2.9 ms for whoami).
        json_response=True,
        host_origin_protection=True,
        allowed_hosts=list(allowed_hosts_for(services.settings)),
        allowed_origins=list(services.settings.allowed_origins),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services.start()
        try:
            async with mcp_app.lifespan(app):
                limit_sessions_per_user(  # its session manager exists from here on
                    session_manager_of(mcp_app), lambda: services.settings.mcp_sessions_per_user
                )
                one_body_limit(session_manager_of(mcp_app))
                if on_started is not None:
                    on_started()
                yield
        finally:
            services.stop()

    app = FastAPI(
        title=f"{services.settings.instance_name} API",
        version=__version__,
        summary="Governed access to company data for analysts and their AI agents.",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url=OPENAPI_PATH,
        docs_url=None,  # install_docs serves it, with its assets from here (no CDN)
        redoc_url=None,
        responses=ERROR_RESPONSES,
    )
    app.state.services = services
    install_error_handlers(app)
    install_docs(app, OPENAPI_PATH)
    built = app.openapi
    app.openapi = lambda: with_json_errors(built())  # type: ignore[method-assign]
    for module in (
        system,
        users,
        tokens,
        groups,
        grants,
        registry,
        sync,
        query,
        snapshots,
        catalog,
        metrics,
        distribution,
        audit,
        oauth_grants,
        marketplaces,
        marketplace_routes,
        server_config,
        session_export,
        webhooks,
        well_known,
        signin_routes,
        me_routes,
        group_sync_routes,
    ):
        app.include_router(module.router)

    readiness = AdminReadiness()
    app.state.admin_readiness = readiness
    install_web_apps(app, services, readiness)
    if services.settings.auth.oauth.enabled:
        server = AgnesAuthorizationServer(services)
        app.state.oauth_server = server
        install_oauth(app, server)

    versions = SessionVersions()
    served = UnknownProtocolVersion(
        JsonContentType(
            NegotiatedVersions(
                JsonRpcBatches(
                    JsonRpcInvalidRequest(
                        OneRequestPerId(EndedSessionAnswers(CancelOnHangUp(NoResume(mcp_app))))
                    ),
                    versions,
                ),
                versions,
            )
        )
    )
    app.mount(MCP_PATH, served)
    install_mcp_error_shape(app, MCP_PATH)
    # add_middleware wraps outside-in in reverse order: the last added runs first.
    app.add_middleware(McpAuthGate, services=services, path=MCP_PATH, mcp_app=served)
    app.add_middleware(McpCors, paths=(MCP_PATH, METADATA_PATH))  # before the gate
    app.add_middleware(AdminGate, services=services, readiness=readiness)
    app.add_middleware(
        BodyLimit, max_bytes=int(services.settings.max_request_bytes), streamed=("/api/upload/",)
    )
    app.add_middleware(HostOriginGuard, settings=services.settings)
    app.add_middleware(RequestContextMiddleware, mcp_path=MCP_PATH)
    app.add_middleware(HeadAsGet, excluded=MCP_PATH)  # outermost: every layer sees a GET
    return app


def install_web_apps(app: FastAPI, services: Services, readiness: AdminReadiness) -> None:
    """Call every installed ``agnes.web_apps`` entry point; one that fails to load is
    logged and leaves the server running without it (its paths then answer 503)."""
    for entry in entry_points(group=WEB_APPS_GROUP):
        try:
            install = entry.load()
            install(app, services)
        except Exception as exc:
            logger.exception("the web app %r could not be installed", entry.name)
            readiness.failed(f"{entry.name}: {type(exc).__name__}")
