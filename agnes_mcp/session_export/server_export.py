"""A user's session as a notebook, from the server's audit log: one implementation for
``GET /api/session/export`` and the server's ``session_export`` tool."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from agnes_mcp.auth.principal import Principal
from agnes_mcp.session_export.audit_steps import Window, latest_session, read_steps
from agnes_mcp.session_export.notebook_json import Origin, export
from agnes_mcp.session_export.refusals import NothingToExport
from agnes_mcp.session_export.steps import ExportSummary

if TYPE_CHECKING:
    from agnes_mcp.services import Services

SOURCE = "the server's audit log"
ROUTE = "/api/session/export"


def notebook_for(
    services: Services,
    principal: Principal,
    *,
    session: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    current: str | None = None,
) -> tuple[dict[str, Any], ExportSummary]:
    """The notebook of the caller's own steps: of ``session`` and/or since ``since``
    (until ``until``); with neither, of ``current`` (the MCP session asking), else of the
    caller's latest MCP session."""
    services.write_behind.flush()  # the steps just taken are in the log, not in a queue
    notes: list[str] = []
    if session is None and since is None:
        session = current or latest_session(services.store, principal.user_id)
        if session is None:
            raise NothingToExport(
                "No MCP session of yours is in the audit log; name a time to export from.",
                hint="Pass since, e.g. '2h' (agnes notebook export --since 2h).",
            )
        if current is None:
            notes.append(f"Your latest MCP session, {session}.")
    window = Window(principal.user_id, session=session, since=since, until=until)
    steps, found = read_steps(services.store, window)
    if not steps:
        what = f"MCP session {session}" if session else "that window"
        raise NothingToExport(
            f"The audit log holds no queries of yours for {what}.",
            details={"session": session, "since": since.isoformat() if since else None},
        )
    origin = Origin(
        user=principal.email,
        server=services.settings.base_url,
        source=SOURCE,
        exported_at=dt.datetime.now(dt.UTC),
    )
    notebook, summary = export(
        steps, origin, session=session, since=since, until=until, found=found, notes=notes
    )
    services.audit.record(
        principal,
        "session.export",
        params={"session": session, "since": since, "until": until, "steps": summary.steps},
    )
    return notebook, summary


def download_url(services: Services, summary: ExportSummary) -> str:
    """A URL giving the same notebook later: the window pinned to absolute times."""
    query: dict[str, str] = {}
    if summary.session:
        query["session"] = summary.session
    if summary.since:
        query["since"] = summary.since.isoformat()
    query["until"] = (summary.until or dt.datetime.now(dt.UTC)).isoformat()
    return f"{services.settings.base_url}{ROUTE}?{urlencode(query)}"


def filename(summary: ExportSummary) -> str:
    stamp = (summary.until or dt.datetime.now(dt.UTC)).strftime("%Y%m%d-%H%M%S")
    return f"agnes-session-{stamp}.ipynb"
