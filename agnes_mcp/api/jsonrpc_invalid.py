"""The JSON-RPC error for a ``/mcp`` body that is JSON but not a message.

The MCP SDK's streamable HTTP transport answers such a body ``400`` with code ``-32602``
(invalid params) and pydantic's whole validation report as the message; JSON-RPC 2.0
says ``-32600`` (invalid request). This wrapper reads only ``400`` answers of the MCP app
(a few hundred bytes; every other answer passes untouched, streamed) and rewrites that
one case to the code and message ``agnes mcp`` gives on stdio
(:mod:`agnes_mcp.mcp_server.stdio_transport`).
"""

from __future__ import annotations

import json

from mcp_types import INVALID_PARAMS, INVALID_REQUEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agnes_mcp.api.rewritten_body import rewriting_body
from agnes_mcp.mcp_server.stdio_transport import INVALID_REQUEST_MESSAGE


def _rewritten(body: bytes) -> bytes | None:
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict) or error.get("code") != INVALID_PARAMS:
        return None
    if not str(error.get("message", "")).startswith("Validation error"):
        return None
    answer["error"] = {"code": INVALID_REQUEST, "message": INVALID_REQUEST_MESSAGE}
    return json.dumps(answer).encode()


class JsonRpcInvalidRequest:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        def start(message: Message) -> tuple[Message, bool]:
            return message, message["status"] == 400

        await self.app(
            scope, receive, rewriting_body(send, start, lambda body: _rewritten(body) or body)
        )
