"""The consent page: who asks, where the answer goes, and what "Allow" lets it do.

The client's name is what the client registered itself with, so the page says so and
shows the redirect host next to it, the one thing Agnes can vouch for. Every value is
escaped; the page allows its form to lead to the client's redirect origin and nowhere else.
"""

from __future__ import annotations

import re
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


# CSP's host-source grammar (CSP3 section 2.3.1): letters, digits, '-' and dots. An IPv6
# literal (``[::1]``) or anything else cannot be named there, and a browser drops a source
# it cannot read, leaving ``form-action 'self'``, which blocks Allow's redirect.
CSP_HOST = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?")


def form_action_source(uri: str) -> str:
    """The CSP ``form-action`` source that lets the consent form's redirect reach ``uri``:
    its scheme, host and port, or where the host cannot be written in CSP (an IPv6
    loopback such as ``http://[::1]:8765/cb``) its scheme alone (``http:``)."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:
        port = None
    if CSP_HOST.fullmatch(host) and parts.username is None and parts.password is None:
        return f"{parts.scheme}://{host}" + (f":{port}" if port else "")
    return f"{parts.scheme}:"


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
        form_targets=(form_action_source(pending.redirect_uri),),
    )


def problem_page(title: str, message: str, instance_name: str, *, status_code: int) -> HTMLResponse:
    body = f"<section><h1>{esc(title)}</h1><p>{esc(message)}</p></section>"
    return html_page(title, body, instance_name=instance_name, status_code=status_code)
