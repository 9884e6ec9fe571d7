"""A ``notifications/cancelled`` that arrives before the call it cancels still cancels it.

Over streamable HTTP a call and its cancellation are two POSTs, served concurrently: a
client that cancels soon after calling (an agent's user pressing Escape) can have the
cancel read first. The MCP SDK cancels only a request it has in flight and drops any
other cancel, so that call ran on to its timeout for nobody. Here every tool call runs
for a :class:`~agnes_sync.caller.Caller` of its own (the query lane's caller answers to
it), known by (session, request id); a cancel for a call not running yet is kept a
minute, and the call it names is cancelled as it starts: its queries are interrupted as
they begin and it answers ``query_cancelled``, which the client ignores.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

import mcp_types
from fastmcp import FastMCP
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import ToolResult

from agnes_mcp.session_export.tool_calls import mcp_session
from agnes_sync.caller import CALLER, Caller

KEEP_SECONDS = 60.0  # how long a cancel waits for its call
MAX_KEPT = 10_000  # cancels kept at most (the oldest go first)
# Cancels one session may have kept at once (its own oldest go first): one client sending
# cancels for ids it never calls pushed every other session's out of MAX_KEPT.
MAX_KEPT_PER_SESSION = 100

Key = tuple[str | None, str]


def _key(request_id: object) -> Key:
    return (mcp_session(), str(request_id))


class CancelsBeforeCalls(Middleware):
    """Cancels of calls not yet running, kept until their calls start (or a minute)."""

    def __init__(self) -> None:
        self._running: dict[Key, Caller] = {}
        self._early: OrderedDict[Key, float] = OrderedDict()
        self._kept: dict[str | None, OrderedDict[Key, None]] = {}  # each session's, oldest first

    async def on_notification(
        self,
        context: MiddlewareContext[Any],
        call_next: CallNext[Any, Any],
    ) -> Any:
        if context.method == "notifications/cancelled":
            self._cancelled(context.message)
        return await call_next(context)

    def _cancelled(self, message: Any) -> None:
        params = getattr(message, "params", message)
        request_id = getattr(params, "requestId", None)
        if request_id is None and isinstance(params, dict):
            request_id = params.get("requestId")
        if request_id is None:
            return
        key = _key(request_id)
        running = self._running.get(key)
        if running is not None:
            running.cancel()
            return
        now = time.monotonic()
        self._early[key] = now
        self._early.move_to_end(key)
        mine = self._kept.setdefault(key[0], OrderedDict())
        mine[key] = None
        mine.move_to_end(key)
        while len(mine) > MAX_KEPT_PER_SESSION:
            self._forget(mine.popitem(last=False)[0])
        while self._early and (
            len(self._early) > MAX_KEPT or next(iter(self._early.values())) < now - KEEP_SECONDS
        ):
            self._forget(next(iter(self._early)))

    def _forget(self, key: Key) -> None:
        """Drop the kept cancel of ``key`` (and its session's record of it)."""
        self._early.pop(key, None)
        mine = self._kept.get(key[0])
        if mine is not None:
            mine.pop(key, None)
            if not mine:
                del self._kept[key[0]]

    async def on_call_tool(
        self,
        context: MiddlewareContext[mcp_types.CallToolRequestParams],
        call_next: CallNext[mcp_types.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        request = context.fastmcp_context
        if request is None:
            return await call_next(context)
        key = _key(request.request_id)
        caller = Caller()
        if key in self._early:
            self._forget(key)
            caller.cancel()  # cancelled before it came: its work stops as it starts
        self._running[key] = caller
        marker = CALLER.set(caller)
        try:
            return await call_next(context)
        finally:
            CALLER.reset(marker)
            if self._running.get(key) is caller:
                del self._running[key]


def install_early_cancels(mcp: FastMCP) -> None:
    """Install the middleware on ``mcp`` (once however often it is called)."""
    if not any(isinstance(m, CancelsBeforeCalls) for m in mcp.middleware):
        mcp.add_middleware(CancelsBeforeCalls())
