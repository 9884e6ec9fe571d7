"""A request whose id is that of one still running in its session is refused.

MCP says a request's id MUST NOT have been used before by the client in the session.
The MCP SDK's streamable HTTP transport keeps one answer stream per id: a second POST of
an id still in flight took the first's stream, and the first (a running query) was
never answered; its client waited until its own timeout. Here a session's running
request ids are known, and a POST of one of them is answered ``-32600`` at once,
naming the id, while the first runs on (the rule ``agnes mcp`` keeps on stdio too:
:mod:`agnes_mcp.mcp_server.running_ids`).
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from agnes_mcp.api.json_errors import send_body
from agnes_mcp.api.jsonrpc_invalid import id_of
from agnes_mcp.api.mcp_post import read_post
from agnes_mcp.mcp_server.running_ids import in_flight_error

SESSION_HEADER = b"mcp-session-id"


class OneRequestPerId:
    """Wraps the MCP app: refuses a request whose id one running in its session has."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._running: set[tuple[bytes, str]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        session = dict(scope.get("headers", [])).get(SESSION_HEADER)
        if scope["type"] != "http" or scope["method"] != "POST" or session is None:
            await self.app(scope, receive, send)
            return
        post, receive = await read_post(scope, receive)
        ident = id_of(post.message)
        if ident is None:
            await self.app(scope, receive, send)
            return
        key = (session, json.dumps(ident))
        if key in self._running:
            error = in_flight_error(ident).model_dump(exclude_none=True)
            answer = {"jsonrpc": "2.0", "id": ident, "error": error}
            await send_body(send, 400, json.dumps(answer).encode(), "application/json")
            return
        self._running.add(key)
        try:
            await self.app(scope, receive, send)
        finally:
            self._running.discard(key)
