"""The lightest in-process MCP client: raw JSON-RPC messages over the same in-memory
streams fastmcp's ``Client(server)`` uses, with no client session, no result validation
and no typed result.

What a call costs the server in process (its dispatch, the tool, the answer's
serialisation, the memory streams' hops) is measured here; what fastmcp's ``Client``
adds on top (its session, checking ``structuredContent`` against the output schema with
``jsonschema``, rebuilding a typed value from the schema) is the difference from the
same call through it, reported beside. It is the in-process twin of ``light_http.py``.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastmcp import FastMCP
from mcp.shared.memory import create_client_server_memory_streams
from mcp.shared.message import SessionMessage
from mcp_types import (
    LATEST_PROTOCOL_VERSION,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
)


class LightMemoryClient:
    def __init__(self, read: Any, write: Any) -> None:
        self._read = read
        self._write = write
        self._ids = itertools.count(1)

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send one request and return its ``result`` (raises on a JSON-RPC error)."""
        ident = next(self._ids)
        await self._write.send(
            SessionMessage(JSONRPCRequest(jsonrpc="2.0", id=ident, method=method, params=params))
        )
        while True:
            received = await self._read.receive()
            if isinstance(received, Exception):
                raise received
            message = received.message
            if isinstance(message, JSONRPCResponse) and message.id == ident:
                return dict(message.result)
            if getattr(message, "id", None) == ident:  # an error for this request
                raise RuntimeError(f"{method} failed: {message}")
            # anything else (a log or progress notification) is not this answer

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        result = await self.request("tools/call", {"name": name, "arguments": arguments})
        if result.get("isError"):
            raise RuntimeError(f"{name} answered an error: {result}")
        return result


@asynccontextmanager
async def connected(server: FastMCP) -> AsyncIterator[LightMemoryClient]:
    """``server`` running on in-memory streams in this event loop, initialised."""
    async with (
        create_client_server_memory_streams() as (client_streams, server_streams),
        anyio.create_task_group() as tasks,
    ):
        lowlevel = server._mcp_server
        tasks.start_soon(
            lambda: lowlevel.run(
                server_streams[0], server_streams[1], lowlevel.create_initialization_options()
            )
        )
        client = LightMemoryClient(*client_streams)
        await client.request(
            "initialize",
            {
                "protocolVersion": LATEST_PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "agnes-bench-light", "version": "1"},
            },
        )
        await client_streams[1].send(
            SessionMessage(JSONRPCNotification(jsonrpc="2.0", method="notifications/initialized"))
        )
        try:
            yield client
        finally:
            tasks.cancel_scope.cancel()
