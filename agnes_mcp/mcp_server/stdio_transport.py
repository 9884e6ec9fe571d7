"""The MCP server on stdio, answering every line it cannot read.

The MCP SDK's stdio transport reads a line that is not a JSON-RPC message as an error item
on its read stream, which the server only logs: the client that sent it waits for an
answer that never comes. JSON-RPC 2.0 says what to answer, and the streamable HTTP
transport answers so: ``-32700`` (parse error) for a line that is not JSON, ``-32600``
(invalid request) for JSON that is not a message, with the request's ``id`` when one can
be read from it, else ``null``. Here a relay between the transport and the server turns
those items into that answer and passes every message on unchanged.

A request whose ``id`` MCP does not allow (null, an object, a list, a boolean, a number
not written as an integer) is read by the SDK as a notification: it is not run and not
answered, and the client waits for ever. Over HTTP such a request is answered ``-32600``
(:mod:`agnes_mcp.api.jsonrpc_invalid`); here each line is screened before the SDK reads
it, and such a request is answered the same.

A request whose id one still running has is answered ``-32600`` and not run, as over
HTTP (:mod:`.running_ids`).

A batch (a JSON array of messages) is served in a session of protocol 2025-03-26, which
has them, and refused in any other (:mod:`.stdio_batches`).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
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
    jsonrpc_message_adapter,
)
from pydantic import ValidationError

from agnes_mcp.mcp_server.running_ids import in_flight_error
from agnes_mcp.mcp_server.stdio_batches import (
    Batch,
    SessionBatches,
    answers_line,
    batch_line,
    batch_of,
    refused_batch,
)
from agnes_mcp.mcp_server.stdio_claim import claimed_stdio

Item = SessionMessage | Exception
INVALID_REQUEST_MESSAGE = (
    "Invalid Request: the message is JSON but not a JSON-RPC 2.0 message "
    '(an object with "jsonrpc": "2.0" and a "method", or an answer to a request).'
)

BATCH_MESSAGE = (
    "Invalid Request: a batch (a JSON array of messages) is not accepted: MCP has had no "
    "batches since protocol 2025-06-18; send each message on its own."
)
INVALID_ID_MESSAGE = (
    'Invalid Request: a request\'s "id" must be a string or an integer (MCP allows no '
    "null); it was not run."
)
# What a screened line with an unusable id is replaced by: JSON that is no message, so the
# SDK hands it on as an error item, which is answered with INVALID_ID_MESSAGE.
UNUSABLE_ID_LINE = json.dumps({"agnes.unusable_id": True}) + "\n"


def usable_id(value: object) -> bool:
    """A string or an integer written as one (``1.0`` and ``1e3`` are read by the SDK as
    no id at all, as a fraction is)."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def has_unusable_id(body: bytes | str) -> bool:
    """Whether ``body`` is a request (a ``method`` and an ``id``) whose id is none MCP
    allows."""
    named = '"id"' in body if isinstance(body, str) else b'"id"' in body
    if not named:  # a notification: nothing to parse
        return False
    try:
        message = json.loads(body)
    except ValueError:
        return False  # the SDK answers what is not JSON
    return unusable_id_in(message)


def unusable_id_in(message: Any) -> bool:
    """Whether ``message`` (parsed JSON) is a request whose id is none MCP allows."""
    return (
        isinstance(message, dict)
        and "method" in message
        and "id" in message
        and not usable_id(message["id"])
    )


def _invalid_id_answer() -> JSONRPCError:
    return JSONRPCError(
        jsonrpc="2.0", id=None, error=ErrorData(code=INVALID_REQUEST, message=INVALID_ID_MESSAGE)
    )


def _in_flight_answer(ident: str | int) -> JSONRPCError:
    return JSONRPCError(jsonrpc="2.0", id=ident, error=in_flight_error(ident))


def unreadable_line_answer(exc: Exception) -> JSONRPCError:
    """The JSON-RPC error answering a line the transport could not read as a message."""
    errors = exc.errors(include_url=False) if isinstance(exc, ValidationError) else []
    if any(_is_unusable_id_line(error.get("input")) for error in errors):
        return _invalid_id_answer()
    if not errors or any(error["type"] == "json_invalid" for error in errors):
        return JSONRPCError(
            jsonrpc="2.0",
            id=None,
            error=ErrorData(
                code=PARSE_ERROR,
                message="Parse error: the line is not JSON (send one JSON-RPC message a line).",
            ),
        )
    batch = batch_of(exc) is not None
    return JSONRPCError(
        jsonrpc="2.0",
        id=_request_id(errors),
        error=ErrorData(
            code=INVALID_REQUEST,
            message=BATCH_MESSAGE if batch else INVALID_REQUEST_MESSAGE,
        ),
    )


def _is_unusable_id_line(value: object) -> bool:
    return isinstance(value, dict) and value.get("agnes.unusable_id") is True


async def screened_lines(lines: AsyncIterable[str]) -> AsyncIterator[str]:
    """The lines of ``lines`` (stdin), each request with an unusable id replaced by
    :data:`UNUSABLE_ID_LINE`, each batch by its marker line. A blank line holds no
    message (newlines only delimit messages: a client's extra ``\\n`` or ``\\r\\n``)
    and is skipped: it was answered ``-32700`` with ``"id": null``, an answer to no
    request, which a client matching answers to its requests takes for a fault."""
    async for line in lines:
        if line.isspace():  # stops at the first other character: free for a message
            continue
        yield UNUSABLE_ID_LINE if has_unusable_id(line) else batch_line(line) or line


def _request_id(errors: list[Any]) -> int | str | None:
    """The ``id`` of the object that failed, when it is a request (it has a ``method``)
    with a usable one: an answer the client sent is answered with none, or the client
    would take the error for the answer to its own request of that id."""
    for error in errors:
        value = error.get("input")
        if isinstance(value, dict) and "method" in value:
            ident = value.get("id")
            if isinstance(ident, (str, int)) and usable_id(ident):
                return ident
    return None


# How long the server keeps answering after its input ended (a client that sent its last
# request and closed stdin, as `echo ... | agnes mcp` does): past it, what still runs is
# cut off. A query stops at its own timeout (120 s in a workspace) well before.
DRAIN_SECONDS = 600.0
CANCELLED = "notifications/cancelled"


async def never() -> None:
    await anyio.sleep_forever()


def reader_gone(fd: int) -> Callable[[], Awaitable[None]]:
    """What returns once nobody reads ``fd`` (stdout) any more: a pipe's or socket's
    writing end turns readable only when its reader has closed it (a client that died
    or hung up), never otherwise. On anything else (a file, a terminal) it never
    returns."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return never
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        return never

    async def gone() -> None:
        await anyio.wait_readable(fd)

    return gone


@asynccontextmanager
async def answering_unreadable_lines(
    read: Any, write: Any, hung_up: Callable[[], Awaitable[None]] = never
) -> AsyncIterator[tuple[MemoryObjectReceiveStream[Item], MemoryObjectSendStream[SessionMessage]]]:
    """The messages of ``read`` and the stream to answer on, for the server; what could not
    be read is answered on ``write`` here. When ``read`` ends, the server's stream ends
    only once every request read has been answered (the SDK would answer those still
    running "Connection closed"), or after :data:`DRAIN_SECONDS`, or as soon as
    ``hung_up`` returns (nobody reads the answers: a client that died mid-call), which
    cancels what still runs (its queries are interrupted)."""
    send, receive = anyio.create_memory_object_stream[Item](0)
    answers, answered = anyio.create_memory_object_stream[SessionMessage](0)
    pending: set[Any] = set()
    drained = anyio.Event()
    batches = SessionBatches()

    async def take(item: SessionMessage) -> None:
        message = item.message
        if isinstance(message, JSONRPCRequest) and message.id in pending:
            await write.send(SessionMessage(_in_flight_answer(message.id)))
            return
        batches.read(message)
        if isinstance(message, JSONRPCRequest):
            pending.add(message.id)
        elif isinstance(message, JSONRPCNotification) and message.method == CANCELLED:
            cancelled = (message.params or {}).get("requestId")
            pending.discard(cancelled)  # never answered
            whole = batches.cancelled(cancelled)
            if whole is not None and whole.answers:
                await write.send(SessionMessage(answers_line(whole.answers)))
        await send.send(item)

    async def serve_batch(batch: list[Any]) -> None:
        """Each message of ``batch`` served on its own; the answers go out as one line
        once every request of it is answered (:meth:`SessionBatches.answered`)."""
        refused = refused_batch(batch)
        if refused is not None:
            await write.send(SessionMessage(refused))
            return
        gathered, messages = Batch(), []
        for element in batch:
            if unusable_id_in(element):
                gathered.answers.append(_invalid_id_answer())
                continue
            try:
                message = jsonrpc_message_adapter.validate_python(element, by_name=False)
            except ValidationError as exc:
                gathered.answers.append(unreadable_line_answer(exc))
                continue
            if isinstance(message, JSONRPCRequest):
                if message.id in pending:  # answered in the batch's line, not run
                    gathered.answers.append(_in_flight_answer(message.id))
                    continue
                batches.wait_for(gathered, message.id)
            messages.append(message)
        if gathered.done and gathered.answers:  # no request: the refusals are all it gets
            await write.send(SessionMessage(answers_line(gathered.answers)))
        for message in messages:
            await take(SessionMessage(message))

    async def relay() -> None:
        async with send:
            async for item in read:
                if isinstance(item, Exception):
                    batch = batch_of(item)
                    if batch is not None and batches.taken:
                        await serve_batch(batch)
                    else:
                        await write.send(SessionMessage(unreadable_line_answer(item)))
                    continue
                await take(item)
            with anyio.move_on_after(DRAIN_SECONDS):
                async with anyio.create_task_group() as draining:

                    async def until_answered() -> None:
                        while pending:
                            await drained.wait()
                        draining.cancel_scope.cancel()

                    async def until_hung_up() -> None:
                        await hung_up()
                        draining.cancel_scope.cancel()

                    draining.start_soon(until_answered)
                    draining.start_soon(until_hung_up)

    async def forward() -> None:
        nonlocal drained
        async with answered, write:  # closing write ends the transport's stdout writer
            async for message in answered:
                part, whole = batches.answered(message.message)
                if whole is not None:
                    await write.send(SessionMessage(answers_line(whole.answers)))
                elif not part:
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
        with claimed_stdio() as (wire_in, wire_out, out_fd):
            stdin = anyio.wrap_file(wire_in)
            hung_up = reader_gone(out_fd) if out_fd is not None else never
            async with (
                server._lifespan_manager(),
                stdio_server(stdin=screened_lines(stdin), stdout=anyio.wrap_file(wire_out)) as (  # type: ignore[arg-type]
                    read,
                    write,
                ),
            ):
                lowlevel = server._mcp_server
                async with answering_unreadable_lines(read, write, hung_up) as (messages, answers):
                    await lowlevel.run(messages, answers, lowlevel.create_initialization_options())
    finally:
        reset_transport(token)
