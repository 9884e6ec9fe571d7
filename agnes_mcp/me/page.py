"""The HTML of ``/me``: plain server-rendered sections, every value escaped.

A freshly created token is rendered only into the response of the form that made it
(never into a URL, a log line or a later page) with a copy button; the two connect
lines carry it there and a ``<TOKEN>`` placeholder everywhere else.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.responses import HTMLResponse

from agnes_mcp.me.token_form import MAX_EXPIRY_DAYS, TokenForm
from agnes_mcp.me.view import MeView, oauth_line, paste_lines
from agnes_mcp.store.groups import MembershipSource
from agnes_mcp.store.tokens import TokenInfo
from agnes_mcp.web_layout import esc, html_page

SOURCE_LABELS = {
    MembershipSource.ADMIN: "added by an admin",
    MembershipSource.GOOGLE_SYNC: "Google Workspace group sync",
    MembershipSource.SYSTEM_SEED: "built in",
}
METHOD_LABELS = {
    "token": "a personal access token",
    "oidc": "single sign-on (OIDC)",
    "google": "Google",
}

# Copy buttons: <button data-copy="ID"> copies the text of the element with that id.
COPY_SCRIPT = """
document.querySelectorAll('button[data-copy]').forEach(function (button) {
  button.addEventListener('click', function () {
    var text = document.getElementById(button.dataset.copy).textContent;
    var done = function () { button.textContent = 'Copied'; };
    if (navigator.clipboard) {
      navigator.clipboard.writeText(text).then(done, function () {});
    } else {
      var range = document.createRange();
      range.selectNodeContents(document.getElementById(button.dataset.copy));
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      document.execCommand('copy');
      done();
    }
  });
});
"""


def when(value: datetime | None, empty: str = "—") -> str:
    if value is None:
        return empty
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _copyable(element_id: str, text: str) -> str:
    return (
        f"<pre id='{esc(element_id)}'>{esc(text)}</pre>"
        f"<button type='button' class='secondary' data-copy='{esc(element_id)}'>Copy</button>"
    )


def _csrf(view: MeView) -> str:
    return f"<input type='hidden' name='csrf' value='{esc(view.session.csrf)}'>"


def _who(view: MeView) -> str:
    principal = view.session.principal
    admin = "yes — <a href='/admin'>open the admin app</a>" if view.is_admin else "no"
    method = METHOD_LABELS.get(view.session.method, view.session.method)
    return (
        "<section id='who'><h2>Who I am</h2><table>"
        f"<tr><th>E-mail</th><td>{esc(principal.email)}</td></tr>"
        f"<tr><th>Name</th><td>{esc(principal.name or '—')}</td></tr>"
        f"<tr><th>Signed in with</th><td>{esc(method)}, "
        f"{esc(when(view.session.created_at))}</td></tr>"
        f"<tr><th>Admin</th><td>{admin}</td></tr>"
        "</table></section>"
    )


def _groups(view: MeView) -> str:
    rows = "".join(
        f"<tr><td>{esc(group.name)}</td><td>"
        + esc(", ".join(SOURCE_LABELS[s] for s in group.sources) or "—")
        + "</td><td><code>"
        + esc(", ".join(s.value for s in group.sources))
        + "</code></td></tr>"
        for group in view.groups
    )
    status = view.group_sync_status
    synced = ""
    if status is not None:
        outcome = (
            f"<span class='ok'>ok</span>, {esc(status.groups)} group(s)"
            if status.outcome == "ok"
            else f"<span class='error'>failed</span>: {esc(status.error or 'no detail')} "
            "(your previous groups were kept)"
        )
        synced = (
            f"<p class='muted' id='group-sync'>Last sync from Google Workspace: "
            f"{esc(when(status.synced_at))}, {outcome}</p>"
        )
    refresh = (
        "<form method='post' action='/auth/refresh-groups' class='inline'>"
        f"{_csrf(view)}<button type='submit' class='secondary'>Refresh my groups</button></form>"
        if view.group_sync_enabled
        else ""
    )
    return (
        "<section id='groups'><h2>My groups</h2>"
        "<p class='muted'>Your groups decide which tables and metrics you may use.</p>"
        "<table><tr><th>Group</th><th>Where it came from</th><th>Source</th></tr>"
        f"{rows}</table>{synced}{refresh}</section>"
    )


def _connect(view: MeView, raw_token: str | None) -> str:
    init, mcp = paste_lines(view.base_url, raw_token) if raw_token else paste_lines(view.base_url)
    note = (
        "These lines hold the token you just created."
        if raw_token
        else "Replace <code>&lt;TOKEN&gt;</code> with a token you create below."
    )
    oauth = (
        "<label>Claude Code (MCP), signing in in your browser — no token to paste</label>"
        f"{_copyable('line-mcp-oauth', oauth_line(view.base_url))}"
        "<p class='muted'>Then run <code>/mcp</code> in Claude Code and choose "
        "Authenticate; it shows up under Connected applications below.</p>"
        "<label>Claude Code (MCP) with a token instead (no browser: CI, scripts)</label>"
        if view.oauth_enabled
        else "<label>Claude Code (MCP)</label>"
    )
    return (
        "<section id='connect'><h2>Connect your laptop</h2>"
        f"<p class='muted'>{note}</p>"
        "<label>The CLI workspace</label>"
        f"{_copyable('line-init', init)}"
        f"{oauth}"
        f"{_copyable('line-mcp', mcp)}</section>"
    )


def _status(token: TokenInfo, now: datetime) -> str:
    if token.revoked_at is not None:
        return f"revoked {when(token.revoked_at)}"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "active"


def _token_rows(view: MeView, now: datetime) -> str:
    if not view.tokens:
        return "<p class='muted'>You have no tokens yet.</p>"
    rows = []
    for token in view.tokens:
        status = _status(token, now)
        revoke = (
            f"<form method='post' action='/me/tokens/{esc(token.id)}/revoke' class='inline'>"
            f"{_csrf(view)}<button type='submit' class='secondary'>Revoke</button></form>"
            if status == "active"
            else ""
        )
        used = (
            f"{when(token.last_used_at)}"
            + (f" from {token.last_used_ip}" if token.last_used_ip else "")
            if token.last_used_at
            else "never"
        )
        rows.append(
            f"<tr data-token='{esc(token.id)}'><td>{esc(token.name)}</td>"
            f"<td><code>{esc(token.prefix)}</code></td><td>{esc(', '.join(token.scopes))}</td>"
            f"<td>{esc(when(token.created_at))}</td><td>{esc(used)}</td>"
            f"<td>{esc(when(token.expires_at, 'never'))}</td><td>{esc(status)}</td>"
            f"<td>{revoke}</td></tr>"
        )
    return (
        "<table><tr><th>Name</th><th>Prefix</th><th>Scopes</th><th>Created</th>"
        "<th>Last used</th><th>Expires</th><th>Status</th><th></th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _error(form: TokenForm, field: str) -> str:
    problem = form.errors.get(field)
    return f"<p class='error' id='error-{field}'>{esc(problem)}</p>" if problem else ""


def _create_form(view: MeView, form: TokenForm) -> str:
    admin_box = (
        "<label><input type='checkbox' name='admin'"
        + (" checked" if form.admin else "")
        + "> Admin scope (lets this token use the admin API)</label>"
        if view.is_admin
        else ""
    )
    return (
        "<h2 style='margin-top:1.2rem'>Create a token</h2>"
        "<form method='post' action='/me/tokens'>"
        f"{_csrf(view)}"
        "<label for='token-name'>Name</label>"
        f"<input type='text' id='token-name' name='name' maxlength='200' required "
        f"value='{esc(form.name)}' placeholder='laptop'>{_error(form, 'name')}"
        "<label for='token-expiry'>Expires after (days, optional)</label>"
        f"<input type='number' id='token-expiry' name='expires_in_days' min='1' "
        f"max='{MAX_EXPIRY_DAYS}' value='{esc(form.expires_in_days)}'>"
        f"{_error(form, 'expires_in_days')}{admin_box}{_error(form, 'admin')}"
        "<p><button type='submit'>Create token</button></p></form>"
    )


def _created(raw_token: str, info: TokenInfo) -> str:
    return (
        "<section id='created'><h2>Your new token</h2>"
        f"<p class='ok'>Token <strong>{esc(info.name)}</strong> "
        f"(<code>{esc(info.prefix)}</code>) was created. Copy it now: it is shown only "
        "once and cannot be recovered.</p>"
        f"{_copyable('new-token', raw_token)}</section>"
    )


def _tokens(view: MeView, form: TokenForm, now: datetime) -> str:
    return (
        "<section id='tokens'><h2>My tokens</h2>"
        f"{_token_rows(view, now)}{_create_form(view, form)}</section>"
    )


def _oauth_rows(view: MeView) -> str:
    if not view.oauth_grants:
        return "<p class='muted'>No application has signed in as you.</p>"
    rows = []
    for grant in view.oauth_grants:
        active = grant.revoked_at is None
        revoke = (
            f"<form method='post' action='/me/oauth/{esc(grant.id)}/revoke' class='inline'>"
            f"{_csrf(view)}<button type='submit' class='secondary'>Revoke</button></form>"
            if active
            else ""
        )
        status = "active" if active else f"revoked {when(grant.revoked_at)}"
        rows.append(
            f"<tr data-grant='{esc(grant.id)}'><td>{esc(grant.client_name)}</td>"
            f"<td>{esc(when(grant.created_at))}</td>"
            f"<td>{esc(when(grant.last_used_at, 'never'))}</td><td>{esc(status)}</td>"
            f"<td>{revoke}</td></tr>"
        )
    return (
        "<table><tr><th>Application</th><th>Allowed</th><th>Last used</th><th>Status</th>"
        "<th></th></tr>" + "".join(rows) + "</table>"
    )


def _oauth(view: MeView) -> str:
    return (
        "<section id='oauth'><h2>Connected applications</h2>"
        "<p class='muted'>MCP clients you allowed to use this server as you, by signing in "
        "from them (OAuth). Revoking one signs it out at once; it can ask you again.</p>"
        f"{_oauth_rows(view)}</section>"
    )


def _tables(view: MeView) -> str:
    if not view.tables:
        return (
            "<section id='tables'><h2>Tables I may use</h2>"
            "<p class='muted'>None yet: ask an admin for access.</p></section>"
        )
    rows = "".join(
        f"<tr><td><code>{esc(t.id)}</code></td><td>{esc(t.query_mode)}</td>"
        f"<td>{esc(f'{t.rows:,}' if t.rows is not None else '—')}</td>"
        f"<td>{esc(when(t.freshness))}</td><td>{esc(t.description)}</td></tr>"
        for t in view.tables
    )
    return (
        "<section id='tables'><h2>Tables I may use</h2><table><tr><th>Table</th>"
        "<th>Mode</th><th>Rows</th><th>Synced</th><th>Description</th></tr>"
        f"{rows}</table></section>"
    )


def _metrics(view: MeView) -> str:
    if not view.metrics:
        return (
            "<section id='metrics'><h2>Metrics I may use</h2>"
            "<p class='muted'>None yet.</p></section>"
        )
    rows = "".join(
        f"<tr><td><code>{esc(m.id)}</code></td><td>{esc(m.display_name)}</td>"
        f"<td>{esc(', '.join(m.tables))}</td><td>{esc(m.description)}</td></tr>"
        for m in view.metrics
    )
    return (
        "<section id='metrics'><h2>Metrics I may use</h2><table><tr><th>Metric</th>"
        "<th>Name</th><th>Tables</th><th>Description</th></tr>"
        f"{rows}</table></section>"
    )


def header(email: str, csrf: str, *, is_admin: bool) -> str:
    """The header's right side: who is signed in, the admin link, the sign-out button."""
    admin = "<a href='/admin'>Admin</a> · " if is_admin else ""
    return (
        f"{esc(email)} · {admin}<form method='post' action='/auth/logout' class='inline'>"
        f"<input type='hidden' name='csrf' value='{esc(csrf)}'>"
        "<button type='submit' class='secondary'>Sign out</button></form>"
    )


def me_page(
    view: MeView,
    instance_name: str,
    *,
    form: TokenForm | None = None,
    created: tuple[TokenInfo, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    now = datetime.now(UTC)
    raw = created[1] if created else None
    body = (
        "<h1>My account</h1>"
        + (_created(raw, created[0]) if created and raw else "")
        + _who(view)
        + _groups(view)
        + _connect(view, raw)
        + _tokens(view, form or TokenForm(), now)
        + _oauth(view)
        + _tables(view)
        + _metrics(view)
    )
    principal = view.session.principal
    return html_page(
        "My account",
        body,
        instance_name=instance_name,
        header_right=header(principal.email, view.session.csrf, is_admin=view.is_admin),
        status_code=status_code,
        script=COPY_SCRIPT,
    )


def message_page(title: str, message: str, instance_name: str, *, status_code: int) -> HTMLResponse:
    """A short page for a refused action (bad CSRF token, a token that is not yours)."""
    body = (
        f"<section><h1>{esc(title)}</h1><p>{esc(message)}</p>"
        "<p><a class='button' href='/me'>Back to my account</a></p></section>"
    )
    return html_page(title, body, instance_name=instance_name, status_code=status_code)
