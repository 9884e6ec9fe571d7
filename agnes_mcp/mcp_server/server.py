"""Building the FastMCP servers: the server's (HTTP, bearer tokens, the caller's grants)
and a workspace's (stdio, local data plus the server for remote work)."""

from __future__ import annotations

from collections.abc import Hashable

from fastmcp import FastMCP
from fastmcp.server.dependencies import get_access_token

from agnes_mcp import __version__
from agnes_mcp.mcp_server.auth import AgnesTokenVerifier, current_principal
from agnes_mcp.mcp_server.backend import Backend
from agnes_mcp.mcp_server.guidance import AGENT_RAILS, register_guidance
from agnes_mcp.mcp_server.server_backend import ServerBackend
from agnes_mcp.mcp_server.telemetry import spans_off_unless_asked
from agnes_mcp.mcp_server.tools import register_tools
from agnes_mcp.services import Services


def build_mcp(services: Services) -> FastMCP:
    """The server's MCP endpoint: every call acts as the bearer token's user."""
    spans_off_unless_asked()
    mcp = FastMCP(
        name=services.settings.instance_name,
        instructions=services.agent_instructions(),
        version=__version__,
        auth=AgnesTokenVerifier(services, base_url=services.settings.base_url),
        mask_error_details=True,
    )
    services.instruction_listeners.append(lambda text: setattr(mcp, "instructions", text))
    results = services.results  # the REST API reads them too, by the same token

    def backend_for() -> Backend:
        return ServerBackend(services, current_principal(services), results)

    def answer_key() -> Hashable | None:
        """The caller and the state their catalog and schema answers depend on: the user
        and token scopes the verifier found for this request, and the store's and the
        analytics DB's generations."""
        access = get_access_token()
        if access is None:
            return None
        return (
            services.store.generation,
            services.orchestrator.generation,
            access.client_id,
            tuple(access.scopes),
        )

    register_tools(mcp, backend_for, workspace=False, answer_key=answer_key)
    register_guidance(mcp, backend_for)
    return mcp


def build_single_user_mcp(backend: Backend, name: str = "Agnes workspace") -> FastMCP:
    """An MCP server for one user and one backend: the workspace's (stdio), or a server
    backend bound to one principal (in-process use)."""
    spans_off_unless_asked()
    mcp = FastMCP(name=name, instructions=AGENT_RAILS, version=__version__, mask_error_details=True)
    register_tools(mcp, lambda: backend, workspace=backend.kind == "workspace")
    register_guidance(mcp, lambda: backend)
    return mcp
