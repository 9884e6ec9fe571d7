"""Writing the JSON error shape from raw ASGI middleware (before FastAPI is reached)."""

from __future__ import annotations

import json

from starlette.types import Send

from agnes_sync.errors import AgnesError


async def send_error(send: Send, error: AgnesError, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": error.to_dict()}).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    raw_headers += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": error.status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
