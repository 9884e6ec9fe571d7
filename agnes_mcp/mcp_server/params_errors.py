"""A request whose params the MCP SDK refuses is told which param is wrong and why.

The SDK answers every malformed request (``tools/call`` without a ``name``, ``arguments``
that are a string, ``resources/read`` without a ``uri``, ``logging/setLevel`` to a level
there is not) ``-32602`` "Invalid request parameters" with empty ``data``, and a request
sent before ``initialize`` the same: the client cannot tell what to fix. A middleware of
the SDK's server (it wraps validation and the handshake's gate) answers the same code
with each problem named in the message and listed in ``data``. A list request's cursor
that the server never issued is refused the same way. A request before ``initialize``
(but a ping) is answered ``-32600`` (invalid request: its params are not at fault),
saying so, as the streamable HTTP endpoint answers a request without a session (``400``,
"Missing session ID"); MCP names no code of its own for it.
"""

from __future__ import annotations

from typing import Any

from fastmcp import FastMCP
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, INVALID_REQUEST
from pydantic import ValidationError

from agnes_mcp.rails.given_text import given_text, problems_said, validation_problems

SDK_MESSAGE = "Invalid request parameters"
PAGED_LISTS = frozenset(
    {"tools/list", "resources/list", "resources/templates/list", "prompts/list"}
)
NOT_INITIALIZED = (
    "Invalid request: the session is not initialized; send initialize (then "
    "notifications/initialized) before {method}."
)


async def naming_bad_params(
    ctx: ServerRequestContext[Any, Any], call_next: CallNext
) -> HandlerResult:
    """``call_next``'s answer; a refusal of the request's params, with the params named."""
    try:
        return await call_next(ctx)
    except ValidationError as exc:
        problems = validation_problems(exc, "param", "params", skip="params")
        message = f"Invalid params for {ctx.method}: {problems_said(problems, 'param')}."
        raise MCPError(INVALID_PARAMS, message, {"problems": problems}) from None
    except MCPError as exc:
        error = exc.error
        gate = error.code == INVALID_PARAMS and error.message == SDK_MESSAGE and not error.data
        if gate and exc.__cause__ is None:  # the SDK's gate before the handshake
            raise MCPError(INVALID_REQUEST, NOT_INITIALIZED.format(method=ctx.method)) from None
        raise


class UnissuedCursors:
    """Refuses a list request's ``cursor`` when the server lists everything in one page
    (it issued none): the SDK ignored it and listed from the start, where MCP's
    pagination says an invalid cursor SHOULD be ``-32602``."""

    def __init__(self, mcp: FastMCP) -> None:
        self.mcp = mcp

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        params = ctx.params if isinstance(ctx.params, dict) else {}
        cursor = params.get("cursor")
        if ctx.method in PAGED_LISTS and cursor is not None and self.mcp._list_page_size is None:
            problem = "the list comes whole in one page, so no cursor was issued; leave it out"
            problems = [{"param": "cursor", "problem": problem, "given": given_text(cursor)}]
            message = f"Invalid params for {ctx.method}: cursor: {problem}."
            raise MCPError(INVALID_PARAMS, message, {"problems": problems})
        return await call_next(ctx)


def install_params_errors(mcp: FastMCP) -> None:
    """Name the params of refused requests on ``mcp``, and refuse cursors it never
    issued (once however often it is called)."""
    chain = mcp._mcp_server.middleware
    if naming_bad_params not in chain:
        chain.append(naming_bad_params)
        chain.append(UnissuedCursors(mcp))
