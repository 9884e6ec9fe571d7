"""Setting and clearing the sign-in cookies, all HttpOnly, SameSite=Lax, Secure over https."""

from __future__ import annotations

import re
import secrets

from fastapi import Request, Response

from agnes_mcp.auth.sessions import LOGIN_CSRF_COOKIE, SESSION_COOKIE
from agnes_mcp.services import Services

LOGIN_CSRF_PATH = "/auth"
_NONCE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


def login_nonce(request: Request) -> tuple[str, bool]:
    """The pre-login random value the login form's CSRF token is bound to, and whether
    it is new (then it must be set with :func:`set_login_nonce`)."""
    current = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if _NONCE.fullmatch(current):
        return current, False
    return secrets.token_urlsafe(32), True


def set_login_nonce(services: Services, response: Response, nonce: str) -> None:
    options = services.web_sessions.cookie_options() | {"path": LOGIN_CSRF_PATH}
    response.set_cookie(LOGIN_CSRF_COOKIE, nonce, **options)


def set_session_cookie(services: Services, response: Response, value: str) -> None:
    response.set_cookie(SESSION_COOKIE, value, **services.web_sessions.cookie_options())
    options = services.web_sessions.cookie_options() | {"path": LOGIN_CSRF_PATH}
    response.delete_cookie(LOGIN_CSRF_COOKIE, **options)  # used up: a new one per sign-in


def clear_session_cookie(services: Services, response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, **services.web_sessions.cookie_options())
