"""An ``MCP-Protocol-Version`` header naming no version the server speaks is refused as
that, naming the versions it does speak.

The MCP SDK routes a request whose header names no handshake version to its 2026-07-28
entry, which answered a client of an earlier version that sent a mistyped or unknown
value (``2025-06-19``, ``1999``) with "params._meta must be an object carrying ...
envelope keys": nothing about the header it has to fix. The transport (2025-06-18 and
later) says such a request MUST be answered 400 Bad Request; here it is, with the
request's id when one can be read, the SDK's code for an unsupported version, and the
versions in ``data`` as the SDK gives them.
"""

from __future__ import annotations

import json

from mcp_types import UNSUPPORTED_PROTOCOL_VERSION
from mcp_types.version import KNOWN_PROTOCOL_VERSIONS
from starlette.types import ASGIApp, Receive, Scope, Send

from agnes_mcp.api.json_errors import send_body
from agnes_mcp.api.jsonrpc_invalid import id_of
from agnes_mcp.api.mcp_post import read_post

VERSION_HEADER = b"mcp-protocol-version"


class UnknownProtocolVersion:
    """Wraps the MCP app: refuses a request whose version header is no version at all."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = (
            dict(scope.get("headers", [])).get(VERSION_HEADER) if scope["type"] == "http" else None
        )
        requested = raw.decode("latin-1").strip() if raw is not None else None
        if requested is None or requested in KNOWN_PROTOCOL_VERSIONS:
            await self.app(scope, receive, send)
            return
        ident = None
        if scope["method"] == "POST":
            post, receive = await read_post(scope, receive)
            ident = id_of(post.message)
        supported = list(KNOWN_PROTOCOL_VERSIONS)
        message = (
            f"Unsupported protocol version {requested[:40]!r} in the MCP-Protocol-Version "
            f"header: this server speaks {', '.join(supported)}. Send the version initialize "
            "answered with."
        )
        error = {
            "code": UNSUPPORTED_PROTOCOL_VERSION,
            "message": message,
            "data": {"supported": supported, "requested": requested[:40]},
        }
        answer = json.dumps({"jsonrpc": "2.0", "id": ident, "error": error}).encode()
        await send_body(send, 400, answer, "application/json")
