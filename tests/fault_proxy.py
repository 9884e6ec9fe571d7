"""A local HTTP proxy in front of a real Agnes server that misbehaves on data downloads
(``/api/data/...``) on request: corrupted bytes, a short body, 500s, a dropped
connection, or a slow trickle. Everything else passes through unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.threaded_server import ThreadedServer

MODES = ("ok", "corrupt", "short", "error", "drop", "slow")
HOP = {"content-length", "transfer-encoding", "connection", "content-encoding"}


class FaultProxy(ThreadedServer):
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.mode = "ok"
        self.downloads = 0  # data requests seen
        app = Starlette(
            routes=[
                Route(
                    "/{path:path}", self._forward, methods=["GET", "POST", "PUT", "DELETE", "HEAD"]
                )
            ]
        )
        super().__init__(app, log_level="critical")

    async def _forward(self, request: Request) -> Response:
        data = request.url.path.startswith("/api/data/")
        if data:
            self.downloads += 1
            if self.mode == "error":
                return JSONResponse(
                    {"error": {"code": "internal_error", "message": "boom"}}, status_code=500
                )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP | {"host"}}
        client = httpx.AsyncClient(base_url=self.upstream, timeout=60)
        upstream = await client.send(
            client.build_request(
                request.method,
                request.url.path,
                params=request.query_params,
                headers=headers,
                content=await request.body(),
            ),
            stream=True,
        )
        out = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP}
        mode = self.mode if data else "ok"

        async def body() -> AsyncIterator[bytes]:
            if mode == "slow":
                await asyncio.sleep(0.1)
            sent = 0
            total = int(upstream.headers.get("content-length", "0"))
            try:
                async for chunk in upstream.aiter_bytes(16384):
                    if mode == "corrupt" and sent == 0 and chunk:
                        chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                    if mode == "short" and sent + len(chunk) > total // 2:
                        yield chunk[: max(0, total // 2 - sent)]
                        return
                    if mode == "drop" and sent + len(chunk) > total // 2:
                        raise ConnectionError("dropped by the fault proxy")
                    if mode == "slow":
                        await asyncio.sleep(0.02)
                    sent += len(chunk)
                    yield chunk
            finally:
                await upstream.aclose()
                await client.aclose()

        return StreamingResponse(body(), status_code=upstream.status_code, headers=out)
