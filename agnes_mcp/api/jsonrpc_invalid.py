"""The JSON-RPC error for a ``/mcp`` body that is JSON but not a message, or a request
whose ``id`` is not one.

The MCP SDK's streamable HTTP transport answers such a body ``400`` with code ``-32602``
(invalid params) and pydantic's whole validation report as the message; JSON-RPC 2.0
says ``-32600`` (invalid request). This wrapper reads only the error answers (4xx, 5xx)
of the MCP app (a few hundred bytes; every other answer passes untouched, streamed) and
rewrites that case to the code and message ``agnes mcp`` gives on stdio
(:mod:`agnes_mcp.mcp_server.stdio_transport`). An error answer the SDK gives with
``"id": null`` to a request whose id it never read (an ended session's 404, a 406, the
500 of a session ended during the call) gets the request's id, so the client can match
it to its request.

A request whose ``id`` is an object, a list, a boolean, a number not written as an integer
(``1.5``, ``1.0``, ``1e3``) or null (MCP allows a
string or an integer, never null) is read by the SDK as a notification: it is not run,
and the client waits for an answer that never comes. The request body (already bounded
by the app's body limit) is read here first and such a request is answered ``-32600``.
"""

from __future__ import annotations

import json
from typing import Any

from mcp_types import INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agnes_mcp.api.json_errors import send_body
from agnes_mcp.api.mcp_post import NOT_JSON, McpPost, read_post
from agnes_mcp.api.rewritten_body import rewriting_body
from agnes_mcp.mcp_server.stdio_transport import (
    BATCH_MESSAGE,
    INVALID_ID_MESSAGE,
    INVALID_REQUEST_MESSAGE,
    unusable_id_in,
    usable_id,
)


def _rewritten(body: bytes, request: McpPost | None = None) -> bytes | None:
    """The SDK's error answer as JSON-RPC 2.0 words it: with the ``id`` of ``request``
    (the body sent) when one can be read from it (the SDK answers ``null`` to a request
    it refuses before reading it: 404 for an ended session, 406, 500 when the session
    ended during the call, ...), and a body that is not a message said to be one, or a
    batch when it was a JSON array (MCP has none)."""
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    if not isinstance(answer, dict) or answer.get("jsonrpc") != "2.0":
        return None  # the API's own error shape (a 405, ...): not JSON-RPC
    error = answer.get("error")
    if not isinstance(error, dict):
        return None
    batch = request is not None and request.body.lstrip().startswith(b"[")
    if error.get("code") == INVALID_PARAMS and str(error.get("message", "")).startswith(
        "Validation error"
    ):
        message = BATCH_MESSAGE if batch else INVALID_REQUEST_MESSAGE
        answer["error"] = {"code": INVALID_REQUEST, "message": message}
    unparsed = answer["error"].get("code") == PARSE_ERROR  # JSON-RPC: its id is null
    if answer.get("id") is None and not batch and not unparsed and request is not None:
        answer["id"] = id_of(request.message)
    return json.dumps(answer).encode()


def id_of(message: Any) -> str | int | None:
    """The ``id`` of a message already parsed (:data:`NOT_JSON` for one that is not JSON)
    when it is a request (a JSON object with a ``method``) with a usable one: an error
    answering what the client sent as an answer (to a request of the server's) carries
    none, or the client would take it for the answer to its own request of that id."""
    if message is NOT_JSON or not isinstance(message, dict) or "method" not in message:
        return None
    ident = message.get("id")
    return ident if isinstance(ident, (str, int)) and usable_id(ident) else None


async def _refuse_id(send: Send) -> None:
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": INVALID_REQUEST, "message": INVALID_ID_MESSAGE},
        }
    ).encode()
    await send_body(send, 400, body, "application/json")


class JsonRpcInvalidRequest:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = None
        if scope["method"] == "POST":
            request, receive = await read_post(scope, receive)
            if unusable_id_in(request.message):
                await _refuse_id(send)
                return

        def start(message: Message) -> tuple[Message, bool]:
            return message, message["status"] >= 400

        await self.app(
            scope,
            receive,
            rewriting_body(send, start, lambda body: _rewritten(body, request) or body),
        )
