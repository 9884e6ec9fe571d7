"""Each MCP tool call's audit rows say which call they were: a FastMCP middleware wraps the
call in :func:`~agnes_mcp.audit_trail.audit_extras` with the ``tool``, its ``arguments``
(the SQL aside: the query service records the SQL itself, whole) and, over HTTP, the
``mcp_session`` (the ``mcp-session-id`` header). With them a snapshot or a metric can be
repeated from the audit log (:mod:`agnes_mcp.session_export.audit_steps`), and one MCP
session's steps told from another's."""

from __future__ import annotations

import mcp_types
from fastmcp import FastMCP
from fastmcp.server.dependencies import get_http_headers
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import ToolResult

from agnes_mcp.audit_trail import audit_extras, current_extras

SESSION_HEADER = "mcp-session-id"
MAX_SESSION_CHARS = 200


def mcp_session() -> str | None:
    """This request's MCP session id (None on stdio, or a client without sessions)."""
    value = get_http_headers(include={SESSION_HEADER}).get(SESSION_HEADER)
    return value[:MAX_SESSION_CHARS] if value else None


def current_session() -> str | None:
    """The MCP session of the tool call running here, as its audit rows record it."""
    value = current_extras().get("mcp_session")
    return value if isinstance(value, str) else None


class ToolCallsInAudit(Middleware):
    async def on_call_tool(
        self,
        context: MiddlewareContext[mcp_types.CallToolRequestParams],
        call_next: CallNext[mcp_types.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        arguments = {k: v for k, v in (context.message.arguments or {}).items() if k != "sql"}
        extra: dict[str, object] = {"tool": context.message.name, "arguments": arguments}
        session = mcp_session()
        if session is not None:
            extra["mcp_session"] = session
        with audit_extras(extra):
            return await call_next(context)


def record_tool_calls(mcp: FastMCP) -> None:
    """Install the middleware on ``mcp`` (once however often it is called)."""
    if not any(isinstance(m, ToolCallsInAudit) for m in mcp.middleware):
        mcp.add_middleware(ToolCallsInAudit())
