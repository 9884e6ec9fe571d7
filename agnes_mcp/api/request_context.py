"""Per-request facts other layers need without being handed the request (e.g. the MCP verifier)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from agnes_mcp.caller_ip import client_ip_var


class RequestContextMiddleware:
    """Sets :data:`client_ip_var` and serves ``/mcp`` without a redirect to ``/mcp/``."""

    def __init__(self, app: ASGIApp, mcp_path: str = "/mcp") -> None:
        self.app = app
        self.mcp_path = mcp_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == self.mcp_path:
            scope = dict(scope, path=self.mcp_path + "/", raw_path=(self.mcp_path + "/").encode())
        client = scope.get("client")
        token = client_ip_var.set(client[0] if client else None)
        try:
            await self.app(scope, receive, send)
        finally:
            client_ip_var.reset(token)
