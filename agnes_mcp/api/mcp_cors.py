"""CORS for MCP clients that run in a browser: the MCP endpoint and its protected resource
metadata, as the authorization server's metadata and endpoints already have it.

A browser client first reads ``/.well-known/oauth-protected-resource`` (RFC 9728), then
calls ``/mcp`` with ``Authorization``, ``Content-Type`` and the MCP headers, and must read
``WWW-Authenticate`` on a ``401`` and ``Mcp-Session-Id`` on the answer to ``initialize``:
without CORS headers it can do none of it. Which origins may call at all is decided
before this runs (:mod:`host_guard`: a foreign ``Origin`` is refused with 403 unless
listed in ``allowed_origins``), so an origin that reaches here is allowed, and ``*``
(no cookies are involved: a bearer token is no CORS credential) says no more than that.

It runs before the MCP auth gate: a preflight carries no token and is answered here.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOW_HEADERS = b"authorization, content-type, mcp-protocol-version, mcp-session-id, last-event-id"
EXPOSE_HEADERS = b"mcp-session-id, mcp-protocol-version, www-authenticate"
MAX_AGE = b"600"


class McpCors:
    def __init__(self, app: ASGIApp, paths: tuple[str, ...]) -> None:
        self.app = app
        self.paths = paths  # each path and everything under it

    def _covers(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self.paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._covers(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if headers.get("origin") is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [
                        (b"access-control-allow-origin", b"*"),
                        (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
                        (b"access-control-allow-headers", ALLOW_HEADERS),
                        (b"access-control-max-age", MAX_AGE),
                        (b"vary", b"origin"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if not k.lower().startswith(b"access-control-")
                ]
                kept += [
                    (b"access-control-allow-origin", b"*"),
                    (b"access-control-expose-headers", EXPOSE_HEADERS),
                ]
                message = {**message, "headers": kept}
            await send(message)

        await self.app(scope, receive, with_cors)
