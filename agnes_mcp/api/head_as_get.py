"""``HEAD`` answered on every ``GET`` route, as HTTP says it must be (RFC 9110, 9.3.2).

FastAPI registers a route only for the methods it names, so ``curl -I /healthz`` (or a
load balancer's ``HEAD`` probe) got ``405 Method Not Allowed`` from a route ``GET`` serves.
Here a ``HEAD`` request goes through every layer as a ``GET`` (the same Host/Origin guard,
token, RBAC and limits) and its answer is sent with the status and headers the ``GET``
would have, ``Content-Length`` included, and no body. uvicorn drops a ``HEAD`` answer's body
as well; this layer drops it itself so that no server behind it depends on that.

``/mcp`` keeps its own methods: a ``GET`` there opens a server-sent event stream, which a
``HEAD`` must not (it would never end), and the MCP transport answers ``HEAD`` itself.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    """Serves ``HEAD`` as ``GET`` without its body, on every path but ``excluded``'s."""

    def __init__(self, app: ASGIApp, excluded: str) -> None:
        self.app = app
        self.excluded = excluded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or self._is_excluded(scope):
            await self.app(scope, receive, send)
            return
        ended = False

        async def send_head(message: Message) -> None:
            nonlocal ended
            if message["type"] != "http.response.body":
                await send(message)
            elif not ended:  # the first body message ends the answer; the rest is dropped
                ended = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app(dict(scope, method="GET"), receive, send_head)

    def _is_excluded(self, scope: Scope) -> bool:
        path: str = scope["path"]
        return path == self.excluded or path.startswith(self.excluded + "/")
