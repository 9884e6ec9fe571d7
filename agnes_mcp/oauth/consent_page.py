"""The consent page: who asks, where the answer goes, and what "Allow" lets it do.

The client's name is what the client registered itself with, so the page says so and
shows the redirect host next to it, the one thing Agnes can vouch for. Every value is
escaped; the page allows its form to lead to the client's redirect origin and nowhere else.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi.responses import HTMLResponse

from agnes_mcp.oauth.clients import is_loopback
from agnes_mcp.oauth.pending import PendingAuthorization
from agnes_mcp.web_layout import esc, html_page

CAN = (
    "query the tables you are granted, as you (every call is audited with its name)",
    "spend your remote-scan budget on warehouse tables",
    "read the catalog, metrics and snapshots you can see",
)
CANNOT = (
    "use the admin API, change users, groups or grants",
    "see any table you are not granted",
)


def redirect_origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def redirect_label(uri: str) -> str:
    parts = urlsplit(uri)
    if is_loopback(uri):
        return f"{parts.netloc} (an app on this computer)"
    return parts.netloc


def consent_page(
    pending: PendingAuthorization,
    *,
    email: str,
    csrf: str,
    instance_name: str,
    refresh_days: int,
) -> HTMLResponse:
    can = "".join(f"<li>{esc(item)}</li>" for item in CAN)
    cannot = "".join(f"<li>{esc(item)}</li>" for item in CANNOT)
    body = (
        "<section id='consent'>"
        f"<h1>Allow <q>{esc(pending.client_name)}</q> to use {esc(instance_name)} as you?</h1>"
        "<table>"
        f"<tr><th>Application</th><td>{esc(pending.client_name)} "
        "<span class='muted'>(the name the application gave itself)</span></td></tr>"
        "<tr><th>Returns to</th><td><code>"
        f"{esc(redirect_label(pending.redirect_uri))}</code></td></tr>"
        f"<tr><th>Signed in as</th><td>{esc(email)}</td></tr>"
        f"<tr><th>For</th><td><code>{esc(pending.resource)}</code></td></tr>"
        "</table>"
        f"<h2>It will be able to</h2><ul>{can}</ul>"
        f"<h2>It will not be able to</h2><ul>{cannot}</ul>"
        f"<p class='muted'>Access lasts while the application keeps using it (up to "
        f"{refresh_days} days between uses); revoke it any time on "
        "<a href='/me#oauth'>your account page</a>.</p>"
        "<form method='post' action='/oauth/consent'>"
        f"<input type='hidden' name='csrf' value='{esc(csrf)}'>"
        f"<input type='hidden' name='request' value='{esc(pending.id)}'>"
        "<button type='submit' name='decision' value='allow'>Allow</button> "
        "<button type='submit' name='decision' value='deny' class='secondary'>Deny</button>"
        "</form></section>"
    )
    return html_page(
        "Allow access",
        body,
        instance_name=instance_name,
        form_targets=(redirect_origin(pending.redirect_uri),),
    )


def problem_page(title: str, message: str, instance_name: str, *, status_code: int) -> HTMLResponse:
    body = f"<section><h1>{esc(title)}</h1><p>{esc(message)}</p></section>"
    return html_page(title, body, instance_name=instance_name, status_code=status_code)
