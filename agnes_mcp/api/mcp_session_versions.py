"""Each MCP session speaks the protocol version its ``initialize`` negotiated.

Over streamable HTTP a session's requests name their version in the
``MCP-Protocol-Version`` header, and the server read it afresh on each request: a
session that negotiated 2025-06-18 had its JSON-RPC batches served when a request's
header (or its absence) said 2025-03-26, and one whose header said 2026-07-28 was told
"params._meta must be an object carrying ... envelope keys", nothing about the header.
Here the version each session's ``initialize`` was answered with is kept (from the
answer, as it goes out), a request of that session whose header names another version
is answered ``400 Bad Request`` (what the transport says of a version the server cannot
take) naming the one to send, and whether a session takes batches is read from what it
negotiated (:mod:`.mcp_batches`). A session is forgotten when it ends (``DELETE``, or a
``404`` for it), and at most :data:`MAX_SESSIONS` are kept, the oldest forgotten first.
"""

from __future__ import annotations

import json
from collections import OrderedDict

from mcp_types import INVALID_REQUEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agnes_mcp.api.json_errors import send_body
from agnes_mcp.api.jsonrpc_invalid import id_of
from agnes_mcp.api.mcp_post import read_post

SESSION_HEADER = b"mcp-session-id"
VERSION_HEADER = b"mcp-protocol-version"
MAX_SESSIONS = 10_000  # the SDK's own bound on open sessions
MISMATCH = (
    "The MCP-Protocol-Version header says {requested}, but this session negotiated "
    "{negotiated} in its initialize: send 'MCP-Protocol-Version: {negotiated}' (or "
    "initialize a new session for another version)."
)


class SessionVersions:
    """The protocol version each open session negotiated."""

    def __init__(self, most: int = MAX_SESSIONS) -> None:
        self.most = most
        self._of: OrderedDict[bytes, str] = OrderedDict()

    def of(self, session: bytes) -> str | None:
        return self._of.get(session)

    def opened(self, session: bytes, version: str) -> None:
        self._of[session] = version
        while len(self._of) > self.most:
            self._of.popitem(last=False)

    def ended(self, session: bytes) -> None:
        self._of.pop(session, None)


def _negotiated(body: bytes) -> str | None:
    """The version an ``initialize`` answer (``body``) gives, if it is one."""
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    result = answer.get("result") if isinstance(answer, dict) else None
    version = result.get("protocolVersion") if isinstance(result, dict) else None
    return version if isinstance(version, str) else None


class NegotiatedVersions:
    """Wraps the MCP app: keeps each session's version, refuses a header naming another."""

    def __init__(self, app: ASGIApp, versions: SessionVersions) -> None:
        self.app = app
        self.versions = versions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        session = headers.get(SESSION_HEADER)
        if session is None:
            await self.app(scope, receive, self._watching_openings(send))
            return
        negotiated = self.versions.of(session)
        raw = headers.get(VERSION_HEADER)
        requested = raw.decode("latin-1").strip() if raw is not None else None
        if negotiated is not None and requested is not None and requested != negotiated:
            await self._refuse(scope, receive, send, negotiated, requested)
            return

        async def watching_ends(message: Message) -> None:
            if message["type"] == "http.response.start" and (
                message["status"] == 404 or scope["method"] == "DELETE"
            ):
                self.versions.ended(session)
            await send(message)

        await self.app(scope, receive, watching_ends)

    def _watching_openings(self, send: Send) -> Send:
        """``send``, reading the version of a session an answer opens (passed on as it
        comes; only a copy of its body is kept)."""
        opened: bytes | None = None
        parts: list[bytes] = []

        async def sending(message: Message) -> None:
            nonlocal opened
            if message["type"] == "http.response.start" and message["status"] == 200:
                opened = dict(message.get("headers", [])).get(SESSION_HEADER)
            elif message["type"] == "http.response.body" and opened is not None:
                parts.append(message.get("body", b""))
                if not message.get("more_body", False):
                    version = _negotiated(b"".join(parts))
                    if version is not None:
                        self.versions.opened(opened, version)
            await send(message)

        return sending

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, negotiated: str, requested: str
    ) -> None:
        ident = None
        if scope["method"] == "POST":
            post, _ = await read_post(scope, receive)
            ident = id_of(post.message)
        error = {
            "code": INVALID_REQUEST,
            "message": MISMATCH.format(requested=requested[:40], negotiated=negotiated),
            "data": {"negotiated": negotiated, "requested": requested[:40]},
        }
        answer = json.dumps({"jsonrpc": "2.0", "id": ident, "error": error}).encode()
        await send_body(send, 400, answer, "application/json")
