"""How many MCP sessions (streamable HTTP) one user holds at once.

The MCP SDK's session manager bounds sessions only server-wide (10,000), so one user
opening sessions and never closing them locked every other user out ("Too many open
sessions") for half an hour. Here each user holds at most ``mcp_sessions_per_user``:
opening one more ends that user's oldest session (its id answers 404 from then on, and an
MCP client opens a new one, as the protocol asks). Nobody else's sessions are touched.

The SDK has no hook for this; its admission step (``_admit_session``, called under its
session-creation lock) is wrapped on the one manager instance, and the sessions it tracks
(``_session_owners``: the credential's identity, whose ``client_id`` is the Agnes user
id) are read in their creation order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("agnes.mcp")


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
    beyond ``per_user()`` when the user opens another."""
    admit = manager._admit_session

    def admit_within_limit(requestor: Any) -> Any:
        if requestor is not None:
            _end_oldest(manager, str(requestor.get("client_id")), per_user() - 1)
        return admit(requestor)

    manager._admit_session = admit_within_limit


def _end_oldest(manager: Any, user: str, keep: int) -> None:
    owners: dict[str, Any] = manager._session_owners
    mine = [sid for sid, who in owners.items() if who and str(who.get("client_id")) == user]
    for session_id in mine[: max(0, len(mine) - keep)]:  # oldest first: creation order
        transport = manager._server_instances.pop(session_id, None)
        owners.pop(session_id, None)  # the id answers 404 from now on
        if transport is not None:
            manager._task_group.start_soon(manager._discard_session, session_id, transport)
        logger.info("ended the oldest MCP session of a user holding %d", len(mine))
