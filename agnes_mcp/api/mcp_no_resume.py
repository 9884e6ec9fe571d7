"""A ``GET /mcp`` that asks to resume a stream (``Last-Event-ID``) opens a fresh one.

The server keeps no events to replay (no event store: its answers are plain JSON, and
its event stream's events carry no ids). The MCP SDK still took a ``Last-Event-ID``
header as a request to replay, found nothing to replay from, and returned without an
answer: uvicorn answered ``500 Internal Server Error`` (a client reconnecting its event
stream after a dropped connection met a server fault). The streamable HTTP transport
says a server MAY replay from the header; this one cannot, so it serves the request as
the GET it also is: the session's event stream, from now.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

LAST_EVENT_ID = b"last-event-id"


class NoResume:
    """Wraps the MCP app: a GET's ``Last-Event-ID`` is dropped (nothing to replay)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != LAST_EVENT_ID]
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)
