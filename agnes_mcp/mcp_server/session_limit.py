"""How many MCP sessions (streamable HTTP) one user holds at once.

The MCP SDK's session manager bounds sessions only server-wide (10,000), so one user
opening sessions and never closing them locked every other user out ("Too many open
sessions") for half an hour. Here each user holds at most ``mcp_sessions_per_user``:
opening one more ends that user's oldest session (its id answers 404 from then on, and an
MCP client opens a new one, as the protocol asks). Nobody else's sessions are touched.

Only a session that was opened ends an older one: a request without a session id that is
refused (not an initialize, a bad ``Accept`` header, ...) opens nothing, so it ends nothing
either (it used to end the user's oldest session on its way in). Nor does an
``initialize`` answered with a JSON-RPC error (its params unreadable): the SDK kept that
session, half open, holding one of the user's places. Such answers carry no
``Mcp-Session-Id`` (the SDK named the session it had made for the request, discarded at
once or here, and a client that kept that id got 404 for its next request).

The SDK has no hook for this; the step serving a session's opening request
(``_serve_opening_request``, which discards the session again when that request fails) is
wrapped on the one manager instance, and the sessions it tracks (``_session_owners``: the
credential's identity, whose ``client_id`` is the Agnes user id) are read in their
creation order.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("agnes.mcp")
SESSION_ID = b"mcp-session-id"


def session_manager_of(app: Any) -> Any:
    """The session manager FastMCP's streamable HTTP app made in its lifespan (held by the
    endpoint of its route)."""
    for route in getattr(app, "routes", []):
        handler = getattr(route, "app", None)
        for _ in range(8):  # through the auth middleware FastMCP wraps it in
            manager = getattr(handler, "session_manager", None)
            if manager is not None:
                return manager
            handler = getattr(handler, "app", None)
    raise RuntimeError("FastMCP's streamable HTTP app holds no session manager")


def limit_sessions_per_user(manager: Any, per_user: Callable[[], int]) -> None:
    """Make ``manager`` (a ``StreamableHTTPSessionManager``) end a user's oldest sessions
    beyond ``per_user()`` once the user has opened another."""
    serve_opening = manager._serve_opening_request

    async def serve_then_limit(transport: Any, scope: Any, receive: Any, send: Any) -> None:
        opening = _Opening(send)
        await serve_opening(transport, scope, receive, opening.sending)
        opened = transport.mcp_session_id
        if opened not in manager._server_instances:  # refused: nothing was opened
            return
        if opening.refused:  # answered a JSON-RPC error: opened nothing either
            await manager._discard_session(opened, transport)
            return
        owner = manager._session_owners.get(opened)
        if owner is not None:
            _end_oldest(manager, str(owner.get("client_id")), per_user(), opened)

    manager._serve_opening_request = serve_then_limit


class _Opening:
    """The answer to a session's opening request, a small JSON one held whole to see
    whether it opened the session: not when refused (400, 406, ...), nor when it is a
    JSON-RPC error (an ``initialize`` with bad params is answered 200 with one, and the
    SDK kept its session). A refused answer names no session."""

    def __init__(self, send: Any) -> None:
        self.send = send
        self.refused = False
        self.held: Any = None
        self.parts: list[bytes] = []

    async def sending(self, message: Any) -> None:
        if message["type"] == "http.response.start":
            self.refused = message["status"] >= 400
            if _is_json(message) and not self.refused:
                self.held = message
                return
            await self.send(self._named(message))
            return
        if message["type"] == "http.response.body" and self.held is not None:
            self.parts.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(self.parts)
            self.refused = _is_error(body)
            start, self.held = self.held, None
            await self.send(self._named(start))
            message = {"type": "http.response.body", "body": body}
        await self.send(message)

    def _named(self, start: Any) -> Any:
        if not self.refused:
            return start
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != SESSION_ID]
        return {**start, "headers": headers}


def _is_json(start: Any) -> bool:
    return any(
        k.lower() == b"content-type" and v.startswith(b"application/json")
        for k, v in start.get("headers", [])
    )


def _is_error(body: bytes) -> bool:
    """Whether ``body`` is a JSON-RPC error answer."""
    try:
        answer = json.loads(body)
    except ValueError:
        return False
    return isinstance(answer, dict) and "error" in answer and "result" not in answer


def _end_oldest(manager: Any, user: str, keep: int, opened: str) -> None:
    """End ``user``'s oldest sessions but ``keep`` (counting ``opened``, never ended)."""
    owners: dict[str, Any] = manager._session_owners
    mine = [
        sid
        for sid, who in owners.items()
        if sid != opened and who and str(who.get("client_id")) == user
    ]
    for session_id in mine[: max(0, len(mine) + 1 - keep)]:  # oldest first: creation order
        transport = manager._server_instances.pop(session_id, None)
        owners.pop(session_id, None)  # the id answers 404 from now on
        if transport is not None:
            manager._task_group.start_soon(manager._discard_session, session_id, transport)
        logger.info("ended the oldest MCP session of a user holding %d", len(mine) + 1)
