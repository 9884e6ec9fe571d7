"""The caller's own session as a Jupyter notebook, from the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from agnes_mcp.api.dependencies import PrincipalDep, ServicesDep
from agnes_mcp.session_export import server_export
from agnes_mcp.session_export.window import as_utc, parse_since

router = APIRouter(prefix="/api/session", tags=["session export"])
IPYNB = "application/x-ipynb+json"


class NotebookResponse(JSONResponse):
    media_type = IPYNB


@router.get(
    "/export",
    summary="Your queries (one MCP session, or since a time) as a runnable notebook",
    response_class=NotebookResponse,
    responses={
        200: {
            "content": {
                IPYNB: {
                    "schema": {
                        "type": "object",
                        "description": "A Jupyter notebook (nbformat 4.5).",
                        "required": ["nbformat", "nbformat_minor", "metadata", "cells"],
                    }
                }
            },
            "description": "The .ipynb, as an attachment.",
        }
    },
)
def export(
    services: ServicesDep,
    principal: PrincipalDep,
    since: Annotated[
        str | None,
        Query(max_length=40, description="30m, 2h, 1d, 1w back from now, or an ISO time."),
    ] = None,
    session: Annotated[
        str | None,
        Query(max_length=200, description="An MCP session id (default: your latest)."),
    ] = None,
    until: Annotated[dt.datetime | None, Query(description="Up to (excluded).")] = None,
) -> NotebookResponse:
    notebook, summary = server_export.notebook_for(
        services,
        principal,
        session=session or None,
        since=parse_since(since) if since else None,
        until=as_utc(until) if until else None,
    )
    name = server_export.filename(summary)
    return NotebookResponse(
        notebook,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Agnes-Steps": str(summary.steps),
        },
    )
