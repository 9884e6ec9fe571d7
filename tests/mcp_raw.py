"""Raw JSON-RPC over HTTP to ``/mcp``, for tests that check what the wire carries (status
codes, headers, error bodies) rather than what the SDK makes of it."""

from __future__ import annotations

from typing import Any

MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def initialize(client_name: str = "raw-test") -> dict[str, Any]:
    """An ``initialize`` request from a client called ``client_name``."""
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": client_name, "version": "0"},
        },
    }


INITIALIZE = initialize()
