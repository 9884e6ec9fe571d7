"""``/me``: the page every signed-in person has (admins and analysts alike).

``GET /me`` shows who you are, your groups, what you may use and your tokens;
``POST /me/tokens`` creates a token (its raw value is in that response only) and
``POST /me/tokens/{id}/revoke`` revokes one of yours, and ``POST /me/oauth/{id}/revoke``
one of your connected applications (an OAuth grant). Every POST needs the session and
its CSRF token; a missing session goes to ``/auth/login?next=/me``.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from agnes_mcp.api.web_session import current_session
from agnes_mcp.auth.principal import Principal
from agnes_mcp.auth.sessions import WebSession
from agnes_mcp.errors import CsrfFailed, NotFound, OAuthGrantNotFound, TokenNotFound
from agnes_mcp.me import view as me_view
from agnes_mcp.me.own_tokens import create_own, revoke_own
from agnes_mcp.me.page import me_page, message_page
from agnes_mcp.me.token_form import TokenForm
from agnes_mcp.oauth_admin import revoke_own as revoke_own_grant
from agnes_mcp.services import Services
from agnes_mcp.web_layout import security_headers

router = APIRouter(include_in_schema=False)

LOGIN_REDIRECT = "/auth/login?next=/me"
_FIELDS = ("csrf", "name", "expires_in_days", "admin")


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _to_login() -> RedirectResponse:
    return RedirectResponse(LOGIN_REDIRECT, status_code=303, headers=security_headers())


async def _form(request: Request) -> dict[str, str]:
    """The submitted text fields this page knows (files and unknown fields ignored)."""
    submitted = await request.form(max_files=0, max_fields=20)
    return {name: value for name in _FIELDS if isinstance(value := submitted.get(name), str)}


def _csrf_refused(services: Services) -> Response:
    return message_page(
        "Form expired",
        "This form did not come from your current page (its CSRF token is missing or "
        "wrong). Nothing was changed. Open your account page again and retry.",
        services.settings.instance_name,
        status_code=403,
    )


def _checked(services: Services, session: WebSession, form: dict[str, str]) -> bool:
    try:
        services.web_sessions.check_csrf(session, form.get("csrf"))
    except CsrfFailed:
        return False
    return True


@router.get("/me")
def me(request: Request) -> Response:
    session = current_session(request)
    if session is None:
        return _to_login()
    services = _services(request)
    return me_page(me_view.load(services, session), services.settings.instance_name)


@router.post("/me/tokens")
async def create_token(request: Request) -> Response:
    session = await run_in_threadpool(current_session, request)
    if session is None:
        return _to_login()
    services = _services(request)
    fields = await _form(request)
    if not _checked(services, session, fields):
        return _csrf_refused(services)
    form = TokenForm.read(fields)

    def work() -> Response:
        created = create_own(services, session.principal, form)
        view = me_view.load(services, session)
        name = services.settings.instance_name
        if created is None:
            return me_page(view, name, form=form, status_code=422)
        return me_page(view, name, created=created)

    return await run_in_threadpool(work)


async def _revoke(
    request: Request,
    revoke: Callable[[Services, Principal], object],
    missing: type[NotFound],
    what: str,
    anchor: str,
) -> Response:
    """A CSRF-checked revoke of one of the caller's own things; someone else's (or none)
    is answered as missing, and nothing changes."""
    session = await run_in_threadpool(current_session, request)
    if session is None:
        return _to_login()
    services = _services(request)
    fields = await _form(request)
    if not _checked(services, session, fields):
        return _csrf_refused(services)
    try:
        await run_in_threadpool(revoke, services, session.principal)
    except missing:
        return message_page(
            f"No such {what}",
            f"You have no {what} with that id. Nothing was changed.",
            services.settings.instance_name,
            status_code=404,
        )
    return RedirectResponse(f"/me#{anchor}", status_code=303, headers=security_headers())


@router.post("/me/tokens/{token_id}/revoke")
async def revoke_token(token_id: str, request: Request) -> Response:
    return await _revoke(
        request,
        lambda services, principal: revoke_own(services, principal, token_id),
        TokenNotFound,
        "token",
        "tokens",
    )


@router.post("/me/oauth/{grant_id}/revoke")
async def revoke_oauth_grant(grant_id: str, request: Request) -> Response:
    return await _revoke(
        request,
        lambda services, principal: revoke_own_grant(services, principal, grant_id),
        OAuthGrantNotFound,
        "connected application",
        "oauth",
    )
