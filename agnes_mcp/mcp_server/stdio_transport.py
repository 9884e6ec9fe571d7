"""The MCP server on stdio, answering every line it cannot read.

The MCP SDK's stdio transport reads a line that is not a JSON-RPC message as an error item
on its read stream, which the server only logs: the client that sent it waits for an
answer that never comes. JSON-RPC 2.0 says what to answer, and the streamable HTTP
transport answers so: ``-32700`` (parse error) for a line that is not JSON, ``-32600``
(invalid request) for JSON that is not a message, with the request's ``id`` when one can
be read from it, else ``null``. Here a relay between the transport and the server turns
those items into that answer and passes every message on unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream
from fastmcp import FastMCP
from mcp.shared.message import SessionMessage
from mcp_types import INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError
from pydantic import ValidationError

Item = SessionMessage | Exception
INVALID_REQUEST_MESSAGE = (
    "Invalid Request: the message is JSON but not a JSON-RPC 2.0 message "
    '(an object with "jsonrpc": "2.0" and a "method", or an answer to a request).'
)


def unreadable_line_answer(exc: Exception) -> JSONRPCError:
    """The JSON-RPC error answering a line the transport could not read as a message."""
    errors = exc.errors(include_url=False) if isinstance(exc, ValidationError) else []
    if not errors or any(error["type"] == "json_invalid" for error in errors):
        return JSONRPCError(
            jsonrpc="2.0",
            id=None,
            error=ErrorData(
                code=PARSE_ERROR,
                message="Parse error: the line is not JSON (send one JSON-RPC message a line).",
            ),
        )
    return JSONRPCError(
        jsonrpc="2.0",
        id=_request_id(errors),
        error=ErrorData(
            code=INVALID_REQUEST,
            message=INVALID_REQUEST_MESSAGE,
        ),
    )


def _request_id(errors: list[Any]) -> int | str | None:
    """The ``id`` of the object that failed, when it has a usable one."""
    for error in errors:
        value = error.get("input")
        if isinstance(value, dict):
            ident = value.get("id")
            if isinstance(ident, str) or (isinstance(ident, int) and not isinstance(ident, bool)):
                return ident
    return None


@asynccontextmanager
async def answering_unreadable_lines(
    read: Any, write: Any
) -> AsyncIterator[MemoryObjectReceiveStream[Item]]:
    """The messages of ``read`` for the server; what could not be read is answered on
    ``write`` here. Ends (end of stream for the server) when ``read`` ends."""
    send, receive = anyio.create_memory_object_stream[Item](0)

    async def relay() -> None:
        async with send:
            async for item in read:
                if isinstance(item, Exception):
                    await write.send(SessionMessage(unreadable_line_answer(item)))
                else:
                    await send.send(item)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(relay)
        try:
            yield receive
        finally:
            tasks.cancel_scope.cancel()


async def run_stdio(server: FastMCP) -> None:
    """Serve ``server`` on this process's stdin and stdout (what ``FastMCP.run`` does for
    ``transport="stdio"``, with the relay above between the transport and the server)."""
    from fastmcp.server.context import reset_transport, set_transport
    from mcp.server.stdio import stdio_server

    token = set_transport("stdio")
    try:
        async with server._lifespan_manager(), stdio_server() as (read, write):
            lowlevel = server._mcp_server
            async with answering_unreadable_lines(read, write) as messages:
                await lowlevel.run(messages, write, lowlevel.create_initialization_options())
    finally:
        reset_transport(token)
