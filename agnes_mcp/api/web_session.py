"""The signed-in person of a browser request (the ``agnes_session`` cookie).

HTML pages use :func:`current_session` (``None`` when nobody is signed in, so the page
can redirect to ``/auth/login``); ASGI middleware uses :func:`session_from_cookies`.
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie

from fastapi import Request

from agnes_mcp.auth.sessions import SESSION_COOKIE, WebSession
from agnes_mcp.errors import AuthenticationError
from agnes_mcp.services import Services


def session_from_cookies(services: Services, cookie_header: str | None) -> WebSession | None:
    """The valid session named by a raw ``Cookie`` header, or ``None``."""
    if not cookie_header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie_header)
    except CookieError:  # a malformed Cookie header is the same as none
        return None
    morsel = jar.get(SESSION_COOKIE)
    if morsel is None:
        return None
    try:
        return services.web_sessions.verify(morsel.value)
    except AuthenticationError:
        return None


def current_session(request: Request) -> WebSession | None:
    """The valid session of this request, or ``None``."""
    services: Services = request.app.state.services
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        return services.web_sessions.verify(raw)
    except AuthenticationError:
        return None
