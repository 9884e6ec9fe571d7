"""Building the FastMCP server: instructions, auth and tools."""

from __future__ import annotations

from fastmcp import FastMCP
from mcp.types import ToolAnnotations

from agnes_mcp import __version__
from agnes_mcp.identity import WhoAmI, describe
from agnes_mcp.mcp_server.auth import AgnesTokenVerifier, current_principal
from agnes_mcp.services import Services

INSTRUCTIONS = """\
Agnes serves company data to analysts and their agents, within each user's grants.
Call `whoami` to see who you are acting as and which groups you belong to.
"""


def build_mcp(services: Services) -> FastMCP:
    mcp = FastMCP(
        name=services.settings.instance_name,
        instructions=INSTRUCTIONS,
        version=__version__,
        auth=AgnesTokenVerifier(services, base_url=services.settings.base_url),
        mask_error_details=True,
    )

    @mcp.tool(
        title="Who am I",
        annotations=ToolAnnotations(
            read_only_hint=True,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )
    def whoami() -> WhoAmI:
        """The user this session acts as: e-mail, groups, admin status and token scopes."""
        return describe(services, current_principal(services))

    return mcp
