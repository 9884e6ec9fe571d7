"""Refusals to MCP results, in one place: a FastMCP middleware every Agnes server installs.

A tool that raises an :class:`AgnesError` answers with an error result whose text and
``structuredContent.error`` hold the stable code, message, hint and next step; a resource
read that raises one fails with a resource error naming the code and message. Any other
exception is left to FastMCP, whose ``mask_error_details`` keeps its text from the client.

FastMCP wraps what a tool or resource raises (``ToolError`` / ``ResourceError`` ``from``
the original) before the middleware chain sees it, so the refusal is found as the cause.
"""

from __future__ import annotations

import json
import logging

import mcp_types
from fastmcp import FastMCP
from fastmcp.exceptions import NotFoundError, ResourceError, ToolError
from fastmcp.exceptions import ValidationError as ArgumentsInvalid
from fastmcp.prompts.base import PromptResult
from fastmcp.resources.base import ResourceResult
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import ToolResult
from mcp.shared.exceptions import MCPError
from mcp.types import TextContent
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS
from pydantic import ValidationError

from agnes_mcp.mcp_server import output_budget as ob
from agnes_mcp.rails.given_text import given_text, problems_said
from agnes_mcp.rails.refusals import invalid_arguments
from agnes_sync.errors import AgnesError


class UnknownTool(AgnesError):
    code = "tool_not_found"
    status = 404
    default_hint = "List the tools with tools/list (the catalog tool is where to start)."


def unknown_tool(name: str) -> UnknownTool:
    return UnknownTool(f"There is no tool '{name[:100]}'.", details={"tool": name[:100]})


def error_result(exc: AgnesError) -> ToolResult:
    """The tool result for a refusal: text for the model, the same fields structured."""
    error = exc.to_dict()
    text = f"error {error['code']}: {error['message']}"
    if error.get("hint"):
        text += f"\nhint: {error['hint']}"
    if error.get("next_step"):
        text += f"\nnext step: {ob.dumps(error['next_step'])}"
    return ToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content={"error": json.loads(ob.dumps(error))},
        is_error=True,
    )


def _refusal(exc: BaseException, tool: str | None = None) -> AgnesError | None:
    if isinstance(exc, AgnesError):
        return exc
    if isinstance(exc.__cause__, AgnesError):
        return exc.__cause__
    # FastMCP raises its ValidationError only for a call's arguments (an error a tool's
    # own body raises is tagged apart): that is the caller's to fix, so it is answered.
    if (
        tool is not None
        and isinstance(exc, ArgumentsInvalid)
        and isinstance(exc.__cause__, ValidationError)
    ):
        return invalid_arguments(tool, exc.__cause__)
    return None


class RefusalsAsResults(Middleware):
    """Turns an :class:`AgnesError` from a tool or a resource into its MCP answer."""

    async def on_call_tool(
        self,
        context: MiddlewareContext[mcp_types.CallToolRequestParams],
        call_next: CallNext[mcp_types.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        try:
            return await call_next(context)
        except NotFoundError:  # answered as text only: a refusal like the others instead
            return error_result(unknown_tool(context.message.name))
        except (ToolError, AgnesError, ArgumentsInvalid) as exc:
            refusal = _refusal(exc, context.message.name)
            if refusal is None:
                raise
            return error_result(refusal)

    async def on_read_resource(
        self,
        context: MiddlewareContext[mcp_types.ReadResourceRequestParams],
        call_next: CallNext[mcp_types.ReadResourceRequestParams, ResourceResult],
    ) -> ResourceResult:
        try:
            return await call_next(context)
        except NotFoundError:  # FastMCP quotes the URI as Python does ('agnes://x')
            uri = str(context.message.uri)
            raise MCPError(
                INVALID_PARAMS, f"Resource not found: {given_text(uri)}.", {"uri": uri}
            ) from None
        except (ResourceError, AgnesError) as exc:
            refusal = _refusal(exc)
            if refusal is None:
                raise
            # A refusal of the request (4xx: it named something it may not read, or that
            # is not there) is invalid params, not an internal error (-32603, what FastMCP
            # makes of a ResourceError); a failure on the server's side (5xx: the server
            # unreachable, a timeout) stays an internal error, never the caller's to fix.
            # The refusal rides in ``data`` as a tool's does in structuredContent.
            raise MCPError(
                INVALID_PARAMS if refusal.status < 500 else INTERNAL_ERROR,
                f"{refusal.code}: {refusal.message}",
                {"error": json.loads(ob.dumps(refusal.to_dict()))},
            ) from None

    async def on_get_prompt(
        self,
        context: MiddlewareContext[mcp_types.GetPromptRequestParams],
        call_next: CallNext[mcp_types.GetPromptRequestParams, PromptResult],
    ) -> PromptResult:
        try:
            return await call_next(context)
        except NotFoundError:  # FastMCP quotes the name as Python does ('x')
            name = context.message.name
            raise MCPError(
                INVALID_PARAMS, f"Unknown prompt: {given_text(name)}.", {"prompt": name}
            ) from None
        except ArgumentsInvalid:
            # FastMCP says "Missing required arguments: {'table'}": a Python set. Said as
            # a request's invalid params are (:mod:`.params_errors`), each one named.
            missing = await _missing_arguments(context)
            if not missing:
                raise
            problems = [
                {"param": f"arguments.{name}", "problem": "Missing required argument"}
                for name in missing
            ]
            raise MCPError(
                INVALID_PARAMS,
                f"Invalid params for prompts/get: {problems_said(problems, 'param')}.",
                {"problems": problems},
            ) from None


async def _missing_arguments(
    context: MiddlewareContext[mcp_types.GetPromptRequestParams],
) -> list[str]:
    """The required arguments of the prompt ``context`` gets that it was not given."""
    server = context.fastmcp_context.fastmcp if context.fastmcp_context else None
    prompt = await server.get_prompt(context.message.name) if server is not None else None
    given = context.message.arguments or {}
    required = [a.name for a in (prompt.arguments or []) if a.required] if prompt else []
    return sorted(name for name in required if name not in given)


class _QuietRefusals(logging.Filter):
    """FastMCP logs every exception a tool raises as an error with its traceback; a
    refusal is an answer, not a fault, so its record is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], AgnesError))


_QUIET = _QuietRefusals()


def install_error_mapping(mcp: FastMCP) -> None:
    """Map refusals on ``mcp`` (once however often it is called); the registration of
    the tools and of the resources calls it, so no server lacks it."""
    if not any(isinstance(m, RefusalsAsResults) for m in mcp.middleware):
        mcp.add_middleware(RefusalsAsResults())
    logging.getLogger("fastmcp.server.server").addFilter(_QUIET)
