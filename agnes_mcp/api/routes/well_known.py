"""OAuth 2.0 Protected Resource Metadata (RFC 9728) for the MCP endpoint, without a token.

An MCP client refused at ``/mcp`` reads the ``resource_metadata`` URL from the 401's
``WWW-Authenticate`` header (see ``mcp_gate``), or tries these well-known paths itself,
to learn how to authenticate. With OAuth on (``auth.oauth.enabled``, the default) the
authorization server is Agnes itself, at the same base URL (``agnes_mcp.oauth``); the
only scope a client can be granted is ``data``. Off, ``authorization_servers`` is left
out and clients need a personal access token (``resource_documentation`` says how).
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from agnes_mcp.api.dependencies import ServicesDep
from agnes_mcp.api.docs_assets import DOCS_PATH
from agnes_mcp.auth.principal import TokenScope
from agnes_mcp.settings import AgnesSettings

MCP_PATH = "/mcp"
METADATA_PATH = "/.well-known/oauth-protected-resource"
CACHE_CONTROL = "public, max-age=3600"
# A Host header fit to put back into a URL (the Host guard has already checked the name).
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")

router = APIRouter(tags=["system"])


def public_base_url(settings: AgnesSettings, scheme: str, host: str | None) -> str:
    """Where clients reach this server: ``public_url`` if set, else the scheme and Host the
    request came with (so the metadata names the URL the client used), else ``base_url``."""
    if settings.public_url is not None:
        return str(settings.public_url).rstrip("/")
    if host and _HOST.match(host) and scheme in ("http", "https"):
        return f"{scheme}://{host}"
    return settings.base_url


def metadata_url(base: str) -> str:
    """The metadata of the MCP endpoint: the well-known path with ``/mcp`` appended (RFC
    9728 section 3.1)."""
    return base + METADATA_PATH + MCP_PATH


class ProtectedResourceMetadata(BaseModel):
    """RFC 9728 section 2; only the parameters that apply to Agnes."""

    resource: str = Field(description="The MCP endpoint's URL, the protected resource.")
    resource_name: str = Field(description="The instance's name, for people.")
    resource_documentation: str = Field(
        description="The API docs, which say how to get a personal access token."
    )
    bearer_methods_supported: list[str] = Field(
        description="How a token is sent: the Authorization header only."
    )
    scopes_supported: list[str] = Field(description="The scopes a token can carry.")
    authorization_servers: list[str] | None = Field(
        default=None, description="Where MCP clients sign in (OAuth 2.1): this server."
    )


@router.get(
    METADATA_PATH,
    summary="MCP endpoint's protected resource metadata (RFC 9728; no auth)",
    response_model_exclude_none=True,
)
@router.get(
    METADATA_PATH + MCP_PATH,
    summary="The same, at the path-suffixed well-known URL for /mcp (RFC 9728 section 3.1)",
    response_model_exclude_none=True,
)
async def protected_resource_metadata(
    request: Request, response: Response, services: ServicesDep
) -> ProtectedResourceMetadata:
    oauth = services.settings.auth.oauth.enabled
    base = public_base_url(services.settings, request.url.scheme, request.headers.get("host"))
    response.headers["Cache-Control"] = CACHE_CONTROL
    return ProtectedResourceMetadata(
        resource=base + MCP_PATH,
        resource_name=services.settings.instance_name,
        resource_documentation=base + DOCS_PATH,
        bearer_methods_supported=["header"],
        scopes_supported=[TokenScope.DATA.value],
        authorization_servers=[base] if oauth else None,
    )
