"""Writing the JSON error shape, or any small answer, from raw ASGI middleware (before
FastAPI is reached)."""

from __future__ import annotations

import json

from starlette.types import Scope, Send

from agnes_mcp.api.error_shapes import shape_for
from agnes_sync.errors import AgnesError


async def send_error(
    scope: Scope, send: Send, error: AgnesError, headers: dict[str, str] | None = None
) -> None:
    """``error`` answered in the shape of the request's path (:mod:`.error_shapes`)."""
    shape = shape_for(scope)
    body = json.dumps(shape.render(error)).encode()
    await send_body(
        send, error.status, body, "application/json", {**shape.headers, **(headers or {})}
    )


async def send_body(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    headers: dict[str, str] | None = None,
) -> None:
    """A whole small answer from raw ASGI middleware: status, type, length, body."""
    raw_headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    raw_headers += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
