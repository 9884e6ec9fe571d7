"""The public base URL of the request being served, for the OAuth handlers.

The SDK's handlers call the provider without the request; the routes set this first, so
the provider knows which ``/mcp`` URL a token is for and which issuer answers.
"""

from __future__ import annotations

from contextvars import ContextVar

from fastapi import Request

from agnes_mcp.api.routes.well_known import MCP_PATH, public_base_url
from agnes_mcp.settings import AgnesSettings

request_base_var: ContextVar[str | None] = ContextVar("agnes_oauth_request_base", default=None)


def base_of(settings: AgnesSettings, request: Request) -> str:
    return public_base_url(settings, request.url.scheme, request.headers.get("host"))


def mcp_resource(base: str) -> str:
    """The protected resource a token is bound to (RFC 8707): this server's ``/mcp``."""
    return base + MCP_PATH
