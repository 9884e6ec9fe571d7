"""``GET``/``POST /oauth/consent``: the signed-in user allows or denies an MCP client.

Reached from ``/authorize`` with a pending request id. Nobody signed in: off to
``/auth/login`` and back here. The POST needs the session's CSRF value; a request id
answers once. Allow sends the browser to the client's redirect URI with a single-use
code; Deny with ``error=access_denied``; both carry ``state`` and ``iss`` (RFC 9207).
Both are audited.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from mcp.server.auth.provider import construct_redirect_uri
from starlette.concurrency import run_in_threadpool

from agnes_mcp.api.web_session import current_session
from agnes_mcp.errors import CsrfFailed
from agnes_mcp.oauth.consent_page import consent_page, problem_page, redirect_origin
from agnes_mcp.oauth.provider import CONSENT_PATH, AgnesAuthorizationServer
from agnes_mcp.services import Services
from agnes_mcp.web_layout import security_headers

router = APIRouter(include_in_schema=False)

EXPIRED = (
    "This sign-in request has expired or was already answered. Go back to your "
    "application and connect again."
)


def _parts(request: Request) -> tuple[Services, AgnesAuthorizationServer]:
    return request.app.state.services, request.app.state.oauth_server


def _to_login(request_id: str) -> RedirectResponse:
    target = f"{CONSENT_PATH}?request={quote(request_id, safe='')}"
    return RedirectResponse(
        f"/auth/login?next={quote(target, safe='')}", status_code=303, headers=security_headers()
    )


@router.get(CONSENT_PATH)
async def consent(request: Request) -> Response:
    services, server = _parts(request)
    request_id = request.query_params.get("request", "")
    session = await run_in_threadpool(current_session, request)
    if session is None:
        return _to_login(request_id)
    pending = server.pending.request(request_id)
    name = services.settings.instance_name
    if pending is None:
        return problem_page("Request expired", EXPIRED, name, status_code=400)
    return consent_page(
        pending,
        email=session.principal.email,
        csrf=session.csrf,
        instance_name=name,
        refresh_days=services.settings.auth.oauth.refresh_token_days,
    )


@router.post(CONSENT_PATH)
async def answer(request: Request) -> Response:
    services, server = _parts(request)
    form = await request.form(max_files=0, max_fields=10)
    fields = {k: v for k in ("csrf", "request", "decision") if isinstance(v := form.get(k), str)}
    request_id = fields.get("request", "")
    session = await run_in_threadpool(current_session, request)
    if session is None:
        return _to_login(request_id)
    name = services.settings.instance_name
    try:
        services.web_sessions.check_csrf(session, fields.get("csrf"))
    except CsrfFailed:
        return problem_page(
            "Form expired",
            "This form did not come from your current page (its CSRF value is missing or "
            "wrong). Nothing was allowed. Go back to your application and connect again.",
            name,
            status_code=403,
        )
    decision = fields.get("decision")
    if decision not in ("allow", "deny"):
        return problem_page("No answer", "Choose Allow or Deny.", name, status_code=400)
    pending = server.pending.take_request(request_id)
    if pending is None:
        return problem_page("Request expired", EXPIRED, name, status_code=400)
    principal = session.principal
    params = {"client": pending.client_name, "redirect": redirect_origin(pending.redirect_uri)}
    if decision == "deny":
        services.audit.record(
            principal, "oauth.consent", resource=pending.client_id, result="denied", params=params
        )
        target = construct_redirect_uri(
            pending.redirect_uri,
            error="access_denied",
            error_description="The user denied access.",
            state=pending.state,
            iss=pending.issuer,
        )
    else:
        code = server.issue_code(pending, principal.user_id)
        services.audit.record(principal, "oauth.consent", resource=pending.client_id, params=params)
        target = construct_redirect_uri(
            pending.redirect_uri, code=code, state=pending.state, iss=pending.issuer
        )
    return RedirectResponse(target, status_code=303, headers=security_headers())
