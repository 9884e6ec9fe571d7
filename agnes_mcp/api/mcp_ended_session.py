"""A call whose session ends while it runs is answered as a request of an ended session.

A client that ends its session (``DELETE /mcp``: an agent closing, a user's Ctrl-C) while
one of its calls runs had that call answered ``500 Internal Server Error`` by the MCP
SDK (``-32603`` "Session terminated before the request completed"): a server fault, to a
client that did nothing wrong, and what a monitor counts as one. The call itself is
stopped with its session. The streamable HTTP transport says a request naming an ended
session MUST be answered ``404 Not Found``; here that 500 becomes that answer, with the
JSON-RPC error the SDK gives any request of an ended session (``-32600``), saying the
request was stopped. Every other answer passes untouched (only a 500's few bytes are
held to be read).
"""

from __future__ import annotations

import json

from mcp_types import INTERNAL_ERROR, INVALID_REQUEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agnes_mcp.api.json_errors import send_body

SDK_MESSAGE = "Session terminated before the request completed"
ENDED_MESSAGE = (
    "Session not found: the session ended before this request was answered, and the "
    "request was stopped. Initialize a new session to send it again."
)


def _ended_answer(body: bytes) -> bytes | None:
    """The answer for an ended session's request, when ``body`` is the SDK's 500 for it."""
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict) or error.get("code") != INTERNAL_ERROR:
        return None
    if error.get("message") != SDK_MESSAGE:
        return None
    answer["error"] = {"code": INVALID_REQUEST, "message": ENDED_MESSAGE}
    return json.dumps(answer).encode()


class EndedSessionAnswers:
    """Wraps the MCP app: its 500 for a call whose session ended becomes a 404."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        parts: list[bytes] = []

        async def sending(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start" and message["status"] == 500:
                held = message
                return
            if held is None or message["type"] != "http.response.body":
                await send(message)
                return
            parts.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(parts)
            ended = _ended_answer(body)
            if ended is not None:
                await send_body(send, 404, ended, "application/json")
                return
            kept = [(k, v) for k, v in held.get("headers", []) if k.lower() != b"content-length"]
            await send({**held, "headers": [*kept, (b"content-length", b"%d" % len(body))]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, sending)
