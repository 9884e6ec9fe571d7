"""Refuse request bodies above ``max_request_bytes`` with 413, before any route parses them.

A declared ``Content-Length`` over the limit is refused at once; a chunked body is
read up to the limit and refused as soon as it passes it; a body within the limit
is replayed to the app unchanged. The body is read before any route checks who sent
it, so it must also arrive within ``BODY_SECONDS`` (408 otherwise): a client that sends
most of a large body and then waits holds that memory for seconds, not for as long as
it keeps the connection open.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agnes_mcp.api.json_errors import send_error
from agnes_mcp.errors import MalformedJSON, PayloadTooLarge, RequestTimeout

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
BODY_SECONDS = 30.0  # 10 MiB at ~350 KB/s


class BodyLimit:
    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        *,
        streamed: tuple[str, ...] = (),
        body_seconds: float | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streamed = streamed  # path prefixes whose routes stream and limit bodies themselves
        self.body_seconds = body_seconds  # None: BODY_SECONDS, read at each request

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"The request body is larger than {self.max_bytes} bytes.",
            hint="Send less data per request (the limit is the max_request_bytes setting).",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WITH_BODY:
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith(self.streamed):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await send_error(
                    scope, send, MalformedJSON("The Content-Length header is not a number.")
                )
                return
            if length > self.max_bytes:
                await send_error(scope, send, self._too_large())
                return
        chunks: list[bytes] = []
        seconds = self.body_seconds or BODY_SECONDS
        try:
            async with asyncio.timeout(seconds):
                whole = await self._read(receive, chunks)
        except TimeoutError:
            await send_error(
                scope,
                send,
                RequestTimeout(
                    f"The request body did not arrive within {seconds:g} s.",
                    hint="Send the whole request at once; large files go to /api/upload/.",
                ),
                {"connection": "close"},
            )
            return
        if not whole:
            await send_error(scope, send, self._too_large())
            return
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive, chunks: list[bytes]) -> bool:
        """The body into ``chunks``; False when it passed the limit."""
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return True  # the client went away; let the app see it
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return False
            chunks.append(chunk)
            if not message.get("more_body", False):
                return True
