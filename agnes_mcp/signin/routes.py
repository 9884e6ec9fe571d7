"""Sign-in for people: the login page, sign-in with a token, sign-out.

The OIDC routes live in :mod:`agnes_mcp.signin.oidc_routes` and are included here.
Every answer is an HTML page (never the API's JSON errors); every form is
CSRF-protected: the login form by a token bound to a random pre-login cookie,
sign-out by the session's own token.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from agnes_mcp.api.web_session import current_session
from agnes_mcp.auth.sessions import SESSION_COOKIE, WebSession
from agnes_mcp.errors import AuthenticationError, CsrfFailed, UserInactive
from agnes_mcp.services import Services
from agnes_mcp.signin import oidc_routes
from agnes_mcp.signin.cookies import (
    clear_session_cookie,
    login_nonce,
    set_login_nonce,
    set_session_cookie,
)
from agnes_mcp.signin.next_url import destination, safe_next
from agnes_mcp.signin.pages import login_page, problem_page, signed_in_page
from agnes_mcp.signin.problems import SignInRefused
from agnes_mcp.signin.state import (
    client_ip,
    end_previous_session,
    services_of,
    sign_in_state,
)

router = APIRouter(include_in_schema=False)
router.include_router(oidc_routes.router)

TOKEN_PROBLEMS = {
    "token_invalid": "This is not a valid token. Paste the whole value, starting 'agnes_'.",
    "token_revoked": "This token was revoked. Ask an admin for a new one.",
    "token_expired": "This token has expired. Ask an admin for a new one.",
    "user_inactive": "Your account is deactivated. Ask an admin to reactivate it.",
}


def _form_value(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _login_form(
    request: Request,
    services: Services,
    next_path: str | None,
    *,
    field_error: str | None = None,
    page_error: str | None = None,
    status_code: int = 200,
) -> Response:
    nonce, is_new = login_nonce(request)
    response = login_page(
        services.settings,
        csrf=services.web_sessions.login_csrf(nonce),
        next_path=next_path,
        field_error=field_error,
        page_error=page_error,
        status_code=status_code,
    )
    if is_new:
        set_login_nonce(services, response, nonce)
    return response


@router.get("/auth/login")
def login(request: Request, next: str | None = None) -> Response:
    services = services_of(request)
    next_path = safe_next(next)
    session = current_session(request)
    if session is not None:
        return signed_in_page(services.settings, session, next_path=next_path)
    return _login_form(request, services, next_path)


def _token_session(
    services: Services, token: str, ip: str, previous: str | None
) -> tuple[WebSession, str]:
    principal = services.tokens.authenticate(token, ip)
    session, cookie = services.web_sessions.sign_in(  # within the token: scopes and life
        principal.user_id, "token", ip, token_id=principal.token_id, scopes=principal.scopes
    )
    end_previous_session(services, previous)
    return session, cookie


@router.post("/auth/token")
async def token_sign_in(request: Request) -> Response:
    services = services_of(request)
    failures = sign_in_state(request).failures
    ip = client_ip(request)
    wait = failures.retry_after(ip)
    if wait is not None:
        refusal = SignInRefused(
            "Too many failed sign-in attempts from your address.",
            hint="Wait a minute, then try again.",
        )
        return problem_page(
            services.settings, "Too many attempts", refusal, status_code=429, retry_after=wait
        )
    form = await request.form()
    next_path = safe_next(_form_value(form, "next"))
    nonce, is_new = login_nonce(request)
    try:
        services.web_sessions.check_login_csrf(None if is_new else nonce, _form_value(form, "csrf"))
    except CsrfFailed:
        return _login_form(
            request,
            services,
            next_path,
            page_error="The sign-in form expired or did not come from this server. Try again.",
            status_code=403,
        )
    token = _form_value(form, "token").strip()
    if not token:
        return _login_form(
            request, services, next_path, field_error="Enter your token.", status_code=401
        )
    try:
        session, cookie = await run_in_threadpool(
            _token_session, services, token, ip, request.cookies.get(SESSION_COOKIE)
        )
    except AuthenticationError as exc:
        failures.failed(ip)
        return _login_form(
            request,
            services,
            next_path,
            field_error=TOKEN_PROBLEMS.get(exc.code, TOKEN_PROBLEMS["token_invalid"]),
            status_code=403 if isinstance(exc, UserInactive) else 401,
        )
    services.audit.record(session.principal, "auth.sign_in", params={"method": "token"})
    response = RedirectResponse(destination(next_path, session.principal), status_code=303)
    set_session_cookie(services, response, cookie)
    return response


@router.post("/auth/logout")
async def logout(request: Request) -> Response:
    services = services_of(request)
    form = await request.form()
    session = await run_in_threadpool(current_session, request)
    if session is not None:
        try:
            services.web_sessions.check_csrf(session, _form_value(form, "csrf"))
        except CsrfFailed as exc:
            return problem_page(services.settings, "Not signed out", exc)
        await run_in_threadpool(services.web_sessions.sign_out, session.id)
        services.audit.record(session.principal, "auth.sign_out")
    response = RedirectResponse("/auth/login", status_code=303)
    clear_session_cookie(services, response)
    return response
