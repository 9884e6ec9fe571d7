"""JSON-RPC batches on ``/mcp`` for sessions of protocol 2025-03-26, which must take them.

MCP 2025-03-26 says an implementation MUST support receiving JSON-RPC batches (a JSON
array of requests, notifications and answers); 2025-06-18 removed them. The MCP SDK
refuses every batch, so a client that negotiated 2025-03-26 (which the server accepts)
had its batches refused. Here a POST of a session whose protocol version is 2025-03-26
(the version its ``initialize`` negotiated; for a session not known to have negotiated
one, its ``MCP-Protocol-Version`` header names it, or is absent: a server SHOULD assume
2025-03-26 then, the 2025-06-18 transport says) is served one message at a time, side
by side, each as a POST of its own with the batch's headers, and answered as JSON-RPC
says: an array of the answers to its requests (``200``), or ``202`` when it held none.
A batch of a later protocol, or one opening a session (an ``initialize`` is never part
of a batch), is left to be refused as before.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from mcp_types import INVALID_REQUEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agnes_mcp.api.json_errors import send_body
from agnes_mcp.api.mcp_post import posting, read_post
from agnes_mcp.api.mcp_session_versions import SessionVersions
from agnes_mcp.mcp_server.stdio_batches import refused_batch
from agnes_mcp.mcp_server.stdio_transport import INVALID_REQUEST_MESSAGE

SESSION_HEADER = b"mcp-session-id"
VERSION_HEADER = b"mcp-protocol-version"
BATCH_VERSIONS = (b"2025-03-26",)  # the protocol versions that have batches


def takes_batches(scope: Scope, versions: SessionVersions) -> bool:
    """Whether the POST is in a session whose protocol version has batches: the version
    it negotiated (:mod:`.mcp_session_versions`), else the one its header names."""
    headers = dict(scope["headers"])
    session = headers.get(SESSION_HEADER)
    if session is None:
        return False
    negotiated = versions.of(session)
    if negotiated is not None:
        return negotiated.encode() in BATCH_VERSIONS
    version = headers.get(VERSION_HEADER)
    return version is None or version.strip() in BATCH_VERSIONS


class Answer:
    """What the app answered one message of a batch: status, headers, body."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.parts: list[bytes] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.parts.append(message.get("body", b""))

    @property
    def body(self) -> bytes:
        return b"".join(self.parts)


class JsonRpcBatches:
    """Wraps the MCP app: serves the batches of 2025-03-26 sessions message by message."""

    def __init__(self, app: ASGIApp, versions: SessionVersions) -> None:
        self.app = app
        self.versions = versions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not takes_batches(scope, self.versions)
        ):
            await self.app(scope, receive, send)
            return
        post, receive = await read_post(scope, receive)
        batch = post.message if isinstance(post.message, list) else None
        if batch is None:  # one message, or not JSON (answered -32700 as any such body)
            await self.app(scope, receive, send)
            return
        refused = refused_batch(batch)
        if refused is not None:
            answer = refused.model_dump_json(by_alias=True, exclude_unset=True).encode()
            await send_body(send, 400, answer, "application/json")
            return
        await self._serve(scope, receive, send, batch)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, batch: list[Any]) -> None:
        gone = anyio.Event()
        answers = [Answer() for _ in batch]

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        async def serve_one(message: Any, answer: Answer) -> None:
            if isinstance(message, list):  # a batch in a batch: no message (not a batch
                # to refuse: this session takes batches, just not nested ones)
                error = {"code": INVALID_REQUEST, "message": INVALID_REQUEST_MESSAGE}
                answer.status = 400
                answer.parts = [json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()]
                return
            body = json.dumps(message).encode()
            given = False

            async def one_receive() -> Message:
                nonlocal given
                if not given:
                    given = True
                    return {"type": "http.request", "body": body, "more_body": False}
                await gone.wait()  # the batch's client hung up: so has each message's
                return {"type": "http.disconnect"}

            await self.app(posting(scope, body), one_receive, answer.send)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(watch)
            async with anyio.create_task_group() as serving:
                for message, answer in zip(batch, answers, strict=True):
                    serving.start_soon(serve_one, message, answer)
            tasks.cancel_scope.cancel()
        gone_session = next((a for a in answers if a.status == 404), None)
        if gone_session is not None:  # the session has ended: answered as one message is
            await send_body(send, 404, gone_session.body, "application/json")
            return
        replies = [json.loads(a.body) for a in answers if a.body and _is_json(a.body)]
        session = {"mcp-session-id": dict(scope["headers"])[SESSION_HEADER].decode("latin-1")}
        if not replies:
            await send_body(send, 202, b"", "application/json", session)
            return
        await send_body(send, 200, json.dumps(replies).encode(), "application/json", session)


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True
