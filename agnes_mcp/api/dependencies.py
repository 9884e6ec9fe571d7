"""FastAPI dependencies: the services, the authenticated caller, the admin check."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from agnes_mcp.auth.principal import Principal
from agnes_mcp.caller_ip import client_ip_var
from agnes_mcp.errors import AuthenticationError, TokenInvalid
from agnes_mcp.services import Services


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not header:
        raise AuthenticationError("Missing 'Authorization: Bearer <token>' header.")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("The Authorization header must read 'Bearer <token>'.")
    return token.strip()


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _services(request: Request) -> Services:
    """:func:`get_services` as a dependency. Async on purpose: FastAPI runs a sync
    dependency on its thread pool, a thread hop (and a wait for a free thread under load)
    on every request for an attribute read."""
    return get_services(request)


async def get_principal(request: Request) -> Principal:
    services = get_services(request)
    token = bearer_token(request.headers.get("authorization"))
    if services.bearer.kind_of(token) != "personal":
        raise TokenInvalid(
            "This is an OAuth access token: it is bound to the MCP endpoint, /mcp (RFC 8707).",
            hint="The REST API takes personal access tokens; create one on your account page, /me.",
        )
    return services.tokens.authenticate(token, client_ip_var.get())


async def get_admin(request: Request) -> Principal:
    principal = await get_principal(request)
    get_services(request).access.require_admin(principal)
    return principal


ServicesDep = Annotated[Services, Depends(_services)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
AdminDep = Annotated[Principal, Depends(get_admin)]
