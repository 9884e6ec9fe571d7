"""A local HTTP proxy in front of a real Agnes server that misbehaves on data downloads
(``/api/data/...``) on request: corrupted bytes, a short body, 500s, a dropped
connection, or a slow trickle. Everything else passes through unchanged."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agnes_mcp.serve import bind

MODES = ("ok", "corrupt", "short", "error", "drop", "slow")
HOP = {"content-length", "transfer-encoding", "connection", "content-encoding"}


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.mode = "ok"
        self.downloads = 0  # data requests seen
        self._sock = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        app = Starlette(
            routes=[
                Route(
                    "/{path:path}", self._forward, methods=["GET", "POST", "PUT", "DELETE", "HEAD"]
                )
            ]
        )
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="critical"))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        while not self._server.started:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

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
