"""An MCP call whose client hangs up before its answer is cancelled, as if the client had
sent ``notifications/cancelled`` for it (or, for a request served without a session, as
protocol 2026-07-28 serves each, by cancelling its POST's work).

The ``/mcp`` endpoint answers each POST with plain JSON and keeps no events to resume
from, so once a client has gone (its process killed, a proxy's timeout, a laptop lid
shut) the answer can reach nobody. uvicorn runs the call on all the same: a slow query ran
to the query timeout for nobody, holding a core and one of the user's query places. Here
the client's ``http.disconnect`` is watched while a request is in flight; when it comes
before the answer, a ``notifications/cancelled`` for each request the POST carried is
handed to the session (the credential and session id of that POST with it), so the call
stops the way a client's own cancel stops it (:mod:`agnes_mcp.mcp_server.early_cancels`,
the query lane's interrupts).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agnes_mcp.api.mcp_post import NOT_JSON, posting, read_post
from agnes_mcp.api.request_body import body_once

logger = logging.getLogger("agnes.mcp")

SESSION_HEADER = b"mcp-session-id"
HUNG_UP_REASON = "the client hung up before the answer"


def ids_of(found: Any) -> list[Any]:
    """The ids of the requests a body already parsed (``found``: one message or a list of
    them, :data:`NOT_JSON` for one that is not JSON) carries, but an ``initialize`` (which
    cannot be cancelled)."""
    if found is NOT_JSON:
        return []
    messages = found if isinstance(found, list) else [found]
    return [
        message["id"]
        for message in messages
        if isinstance(message, dict)
        and isinstance(message.get("method"), str)
        and message["method"] != "initialize"
        and isinstance(message.get("id"), (str, int))
        and not isinstance(message.get("id"), bool)
    ]


def _cancel_body(request_id: Any) -> bytes:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": request_id, "reason": HUNG_UP_REASON},
        }
    ).encode()


class CancelOnHangUp:
    """Wraps the MCP app: a POST of a session's requests whose client disconnects before
    the answer is sent has its requests cancelled in that session; a POST without a
    session has its work cancelled."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        in_session = SESSION_HEADER in dict(scope["headers"])
        post, receive = await read_post(scope, receive)
        ids = ids_of(post.message)
        if not ids or post.hung_up:
            await self.app(scope, receive, send)
            return
        messages: list[Message] = [{"type": "http.request", "body": post.body, "more_body": False}]
        gone = asyncio.Event()
        answered = cancelling = False
        # The work of a POST without a session (protocol 2026-07-28) is cancelled here on a
        # hang-up; a session's requests are cancelled in the session.
        work = None if in_session else anyio.CancelScope()

        async def replayed() -> Message:
            if messages:
                return messages.pop(0)
            await gone.wait()
            return {"type": "http.disconnect"}

        async def sending(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True
            await send(message)

        async def watch() -> None:
            nonlocal cancelling
            while (await receive())["type"] != "http.disconnect":
                pass  # the body's messages again first (given to the app from ``post``)
            gone.set()
            if answered:
                return
            cancelling = True
            logger.info("an MCP client hung up during a call: cancelling it")
            if work is not None:  # served within this POST alone (protocol 2026-07-28)
                work.cancel()
                return
            for request_id in ids:
                await self._cancel(scope, request_id)

        # A task of its own, not an anyio task group: a task group cost ~44 us a POST.
        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            if work is None:
                await self.app(scope, replayed, sending)
            else:
                with work:
                    await self.app(scope, replayed, sending)
        finally:
            if cancelling:  # the cancels reach the session before this POST ends
                await watcher
            else:
                watcher.cancel()

    async def _cancel(self, scope: Scope, request_id: Any) -> None:
        """``notifications/cancelled`` for ``request_id``, sent to the app as a POST with
        the headers of the one that carried the request (its credential, its session)."""
        body = _cancel_body(request_id)

        async def discard(message: Message) -> None:
            return None

        with anyio.CancelScope(shield=True):
            await self.app(posting(scope, body), body_once(body), discard)
