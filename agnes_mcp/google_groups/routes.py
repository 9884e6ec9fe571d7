"""``POST /auth/refresh-groups``: "Refresh my groups" on ``/me``.

Needs the web session and its CSRF token (form field ``csrf``, or the ``X-CSRF-Token``
header); at most one refresh per user every 30 s. The browser is sent back to
``/me?groups=refreshed`` (or ``?groups=failed``); a client sending
``Accept: application/json`` gets the sync's result as JSON instead.
"""

from __future__ import annotations

import math

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from agnes_mcp.api.error_handlers import error_response
from agnes_mcp.api.web_session import current_session
from agnes_mcp.errors import CsrfFailed, SessionInvalid
from agnes_mcp.google_groups.errors import GroupRefreshTooSoon, GroupSyncDisabled
from agnes_mcp.services import Services
from agnes_mcp.web_layout import esc, html_page, security_headers
from agnes_sync.errors import AgnesError

router = APIRouter(include_in_schema=False)

PATH = "/auth/refresh-groups"
LOGIN_REDIRECT = "/auth/login?next=/me"


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "").lower()


def _refusal(request: Request, services: Services, title: str, error: AgnesError) -> Response:
    if _wants_json(request):
        return error_response(error)
    wait = error.details.get("retry_after_seconds")
    headers = {"Retry-After": str(math.ceil(wait))} if isinstance(wait, (int, float)) else {}
    hint = f"<p class='muted'>{esc(error.hint)}</p>" if error.hint else ""
    response = html_page(
        title,
        f"<section><h1>{esc(title)}</h1><p class='error'>{esc(error.message)}</p>{hint}"
        "<p><a class='button' href='/me'>Back to my account</a></p></section>",
        instance_name=services.settings.instance_name,
        status_code=error.status,
    )
    response.headers.update(headers)
    return response


@router.post(PATH)
async def refresh_groups(request: Request) -> Response:
    services: Services = request.app.state.services
    session = await run_in_threadpool(current_session, request)
    if session is None:
        if _wants_json(request):
            return error_response(SessionInvalid("Not signed in."))
        return RedirectResponse(LOGIN_REDIRECT, status_code=303, headers=security_headers())
    submitted = await request.form(max_files=0, max_fields=10)
    csrf = submitted.get("csrf")
    if not isinstance(csrf, str):
        csrf = request.headers.get("x-csrf-token")
    try:
        services.web_sessions.check_csrf(session, csrf)
    except CsrfFailed as exc:
        return _refusal(request, services, "Form expired", exc)
    try:
        result = await run_in_threadpool(
            services.group_sync.refresh, session.user_id, session.principal.email
        )
    except GroupSyncDisabled as exc:
        return _refusal(request, services, "Group sync is not enabled", exc)
    except GroupRefreshTooSoon as exc:
        return _refusal(request, services, "Refreshed moments ago", exc)
    if _wants_json(request):
        return JSONResponse(
            result.model_dump(mode="json"),
            status_code=200 if result.outcome == "ok" else 502,
            headers=security_headers(),
        )
    outcome = "refreshed" if result.outcome == "ok" else "failed"
    return RedirectResponse(f"/me?groups={outcome}", status_code=303, headers=security_headers())
