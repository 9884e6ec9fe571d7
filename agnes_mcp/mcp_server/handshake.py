"""An ``initialize`` inside a session that has had one is refused, and the session stays
as it was.

MCP's lifecycle has one initialization, the first thing a session does. The MCP SDK
answered a second ``initialize`` like the first and took its protocol version: a
session of 2025-03-26 became one of 2025-06-18 (or back) mid-way, with what it had
negotiated (batches, the client's capabilities) changed under requests still running.
A middleware of the SDK's server (it wraps ``initialize`` too, and the SDK commits the
handshake only when the chain succeeds) answers it ``-32600`` (invalid request), naming
the version the session speaks, on both transports.
"""

from __future__ import annotations

from typing import Any

from fastmcp import FastMCP
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_REQUEST

ALREADY_INITIALIZED = (
    "Invalid request: this session is already initialized (protocol {version}); "
    "initialize is sent once, first. Start a new session to initialize again."
)


async def one_initialize(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """``call_next``'s answer; a refusal of an ``initialize`` the session has had."""
    if ctx.method == "initialize" and ctx.session.client_params is not None:
        raise MCPError(
            INVALID_REQUEST,
            ALREADY_INITIALIZED.format(version=ctx.session.protocol_version),
            {"protocolVersion": ctx.session.protocol_version},
        )
    return await call_next(ctx)


def install_one_initialize(mcp: FastMCP) -> None:
    """Refuse a second ``initialize`` on ``mcp`` (once however often it is called)."""
    chain = mcp._mcp_server.middleware
    if one_initialize not in chain:
        chain.append(one_initialize)
