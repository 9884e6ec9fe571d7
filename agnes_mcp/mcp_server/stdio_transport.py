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
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from fastmcp import FastMCP
from mcp.shared.message import SessionMessage
from mcp_types import (
    INVALID_REQUEST,
    PARSE_ERROR,
    ErrorData,
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
)
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


# How long the server keeps answering after its input ended (a client that sent its last
# request and closed stdin, as `echo ... | agnes mcp` does): past it, what still runs is
# cut off. A query stops at its own timeout (120 s in a workspace) well before.
DRAIN_SECONDS = 600.0
CANCELLED = "notifications/cancelled"


@asynccontextmanager
async def answering_unreadable_lines(
    read: Any, write: Any
) -> AsyncIterator[tuple[MemoryObjectReceiveStream[Item], MemoryObjectSendStream[SessionMessage]]]:
    """The messages of ``read`` and the stream to answer on, for the server; what could not
    be read is answered on ``write`` here. When ``read`` ends, the server's stream ends
    only once every request read has been answered (the SDK would answer those still
    running "Connection closed"), or after :data:`DRAIN_SECONDS`."""
    send, receive = anyio.create_memory_object_stream[Item](0)
    answers, answered = anyio.create_memory_object_stream[SessionMessage](0)
    pending: set[Any] = set()
    drained = anyio.Event()

    async def relay() -> None:
        async with send:
            async for item in read:
                if isinstance(item, Exception):
                    await write.send(SessionMessage(unreadable_line_answer(item)))
                    continue
                message = item.message
                if isinstance(message, JSONRPCRequest):
                    pending.add(message.id)
                elif isinstance(message, JSONRPCNotification) and message.method == CANCELLED:
                    pending.discard((message.params or {}).get("requestId"))  # never answered
                await send.send(item)
            with anyio.move_on_after(DRAIN_SECONDS):
                while pending:
                    await drained.wait()

    async def forward() -> None:
        nonlocal drained
        async with answered, write:  # closing write ends the transport's stdout writer
            async for message in answered:
                await write.send(message)
                if isinstance(message.message, (JSONRPCResponse, JSONRPCError)):
                    pending.discard(message.message.id)
                    drained.set()
                    drained = anyio.Event()

    reading = anyio.CancelScope()

    async def relay_until_done() -> None:
        with reading:
            await relay()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(relay_until_done)
        tasks.start_soon(forward)
        try:
            yield receive, answers
        finally:
            reading.cancel()  # the server is done: nothing more is read for it
            await answers.aclose()  # forward writes what it holds, then closes write


async def run_stdio(server: FastMCP) -> None:
    """Serve ``server`` on this process's stdin and stdout (what ``FastMCP.run`` does for
    ``transport="stdio"``, with the relay above between the transport and the server)."""
    from fastmcp.server.context import reset_transport, set_transport
    from mcp.server.stdio import stdio_server

    token = set_transport("stdio")
    try:
        async with server._lifespan_manager(), stdio_server() as (read, write):
            lowlevel = server._mcp_server
            async with answering_unreadable_lines(read, write) as (messages, answers):
                await lowlevel.run(messages, answers, lowlevel.create_initialization_options())
    finally:
        reset_transport(token)
