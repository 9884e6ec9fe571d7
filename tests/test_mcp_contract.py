"""The MCP tool contract (names, titles, descriptions, input and output schemas,
annotations, prompts, resources) is committed in ``tests/contract/mcp_tools.json``; a
change fails here until the snapshot is updated on purpose:

    UPDATE_MCP_CONTRACT=1 uv run pytest tests/test_mcp_contract.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client

from agnes_mcp.mcp_server.server import build_mcp, build_single_user_mcp
from agnes_mcp.mcp_server.workspace_backend import WorkspaceBackend
from agnes_mcp.services import Services
from agnes_sync.server_api import ServerApi
from agnes_sync.workspace.layout import WorkspacePaths

pytestmark = pytest.mark.anyio
SNAPSHOT = Path(__file__).parent / "contract" / "mcp_tools.json"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _describe(mcp: Any) -> dict[str, Any]:
    async with Client(mcp) as client:
        tools = await client.list_tools()
        prompts = await client.list_prompts()
        templates = await client.list_resource_templates()
        resources = await client.list_resources()
    return {
        "tools": {
            t.name: {
                "title": t.title,
                "description": t.description,
                "input_schema": t.input_schema,
                "output_schema": t.output_schema,
                "annotations": t.annotations.model_dump(by_alias=True, exclude_none=True)
                if t.annotations
                else None,
            }
            for t in tools
        },
        "prompts": sorted(p.name for p in prompts),
        "resources": sorted([str(r.uri) for r in resources] + [t.uri_template for t in templates]),
    }


async def test_the_tool_contract_matches_the_snapshot(services: Services, tmp_path: Path) -> None:
    server = await _describe(build_mcp(services))
    api = ServerApi("http://127.0.0.1:9", None)
    workspace = await _describe(
        build_single_user_mcp(WorkspaceBackend(WorkspacePaths(tmp_path), api))
    )
    current = {
        "server": sorted(server["tools"]),
        "workspace_only": sorted(set(workspace["tools"]) - set(server["tools"])),
        "tools": workspace["tools"],
        "prompts": server["prompts"],
        "resources": server["resources"],
    }
    for name, tool in server["tools"].items():
        assert workspace["tools"][name] == tool, f"{name} differs between the backends"
    text = json.dumps(current, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_MCP_CONTRACT") == "1":
        SNAPSHOT.write_text(text, encoding="utf-8")
    committed = SNAPSHOT.read_text(encoding="utf-8") if SNAPSHOT.exists() else ""
    assert text == committed, (
        "The MCP tool contract changed. Review the difference, then update the snapshot with "
        "UPDATE_MCP_CONTRACT=1 uv run pytest tests/test_mcp_contract.py"
    )
