"""The sign-in pages: the login form, "you are signed in", and sign-in problems."""

from __future__ import annotations

import math
from urllib.parse import quote

from fastapi.responses import HTMLResponse

from agnes_mcp.auth.sessions import WebSession
from agnes_mcp.settings import AgnesSettings
from agnes_mcp.signin.next_url import default_destination
from agnes_mcp.web_layout import esc, html_page
from agnes_sync.errors import AgnesError


def login_page(
    settings: AgnesSettings,
    *,
    csrf: str,
    next_path: str | None,
    field_error: str | None = None,
    page_error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Two ways in: the provider's button (only when a client id is set) and a token."""
    name = settings.instance_name
    parts = [f"<section><h1>Sign in to {esc(name)}</h1>"]
    if page_error:
        parts.append(f"<p class='error' role='alert'>{esc(page_error)}</p>")
    if settings.auth.oidc.client_id:
        start = "/auth/oidc/start" + (f"?next={quote(next_path, safe='')}" if next_path else "")
        parts.append(
            f"<p><a class='button' id='oidc-sign-in' href='{esc(start)}'>"
            f"{esc(settings.auth.oidc.button_label)}</a></p>"
        )
    described = " aria-describedby='token-error' aria-invalid='true'" if field_error else ""
    parts.append(
        "<h2>Sign in with a token</h2>"
        "<form method='post' action='/auth/token'>"
        "<label for='token'>Personal access token</label>"
        "<input type='password' id='token' name='token' autocomplete='off' "
        f"spellcheck='false' required{described}>"
    )
    if field_error:
        parts.append(f"<p class='error' id='token-error'>{esc(field_error)}</p>")
    parts.append(
        f"<input type='hidden' name='csrf' value='{esc(csrf)}'>"
        f"<input type='hidden' name='next' value='{esc(next_path or '')}'>"
        "<p><button type='submit'>Sign in</button></p></form>"
        "<p class='muted'>No token? An admin creates one with "
        "<code>agnes admin token create --user you@" + esc(settings.company_domain) + "</code>."
        "</p></section>"
    )
    return html_page("Sign in", "".join(parts), instance_name=name, status_code=status_code)


def signed_in_page(
    settings: AgnesSettings, session: WebSession, *, next_path: str | None
) -> HTMLResponse:
    who = session.principal
    label = f"{who.name} ({who.email})" if who.name else who.email
    links = [f"<a class='button' href='{esc(next_path or default_destination(who))}'>Continue</a>"]
    links.append("<a href='/me'>My page</a>")
    if who.is_admin:
        links.append("<a href='/admin'>Admin</a>")
    body = (
        f"<section><h1>Signed in</h1><p>You are signed in as <strong>{esc(label)}</strong>.</p>"
        f"<p>{' · '.join(links)}</p>"
        "<form method='post' action='/auth/logout' class='inline'>"
        f"<input type='hidden' name='csrf' value='{esc(session.csrf)}'>"
        "<button type='submit' class='secondary'>Sign out</button></form></section>"
    )
    return html_page(
        "Signed in", body, instance_name=settings.instance_name, header_right=esc(who.email)
    )


def problem_page(
    settings: AgnesSettings,
    title: str,
    error: AgnesError,
    *,
    status_code: int | None = None,
    retry_after: float | None = None,
) -> HTMLResponse:
    """A sign-in problem: what happened, what to do, and the way back."""
    hint = f"<p>{esc(error.hint)}</p>" if error.hint else ""
    body = (
        f"<section><h1>{esc(title)}</h1><p class='error' role='alert'>{esc(error.message)}</p>"
        f"{hint}<p class='muted'>Code: <code>{esc(error.code)}</code></p>"
        "<p><a href='/auth/login'>Back to sign-in</a></p></section>"
    )
    response = html_page(
        title, body, instance_name=settings.instance_name, status_code=status_code or error.status
    )
    if retry_after is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return response
