"""Bearer-token check in front of the MCP endpoint, answering in Agnes's error shape.

FastMCP verifies the token too (and gives tools the caller); this gate runs first so a
missing or bad token gets the same ``{"error": {code, message, hint}}`` body as the REST
API, with the ``401`` and ``WWW-Authenticate: Bearer`` MCP clients expect, and wording
about personal access tokens rather than an OAuth flow Agnes does not use.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from agnes_mcp.api.dependencies import bearer_token
from agnes_mcp.api.json_errors import send_error
from agnes_mcp.caller_ip import client_ip_var
from agnes_mcp.errors import AuthenticationError
from agnes_mcp.services import Services


class McpAuthGate:
    def __init__(self, app: ASGIApp, services: Services, path: str) -> None:
        self.app = app
        self.services = services
        self.prefix = path.rstrip("/") + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        try:
            token = bearer_token(Headers(scope=scope).get("authorization"))
            self.services.tokens.authenticate(token, client_ip_var.get(), record_use=False)
        except AuthenticationError as exc:
            exc.hint = (
                "Connect with 'Authorization: Bearer <personal access token>'; an admin "
                "creates one with 'agnes admin token create --user EMAIL'."
            )
            challenge = f'Bearer error="invalid_token", error_description="{exc.code}"'
            await send_error(send, exc, {"www-authenticate": challenge})
            return
        await self.app(scope, receive, send)
