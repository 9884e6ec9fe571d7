"""The one HTML layout of the server's plain pages (/auth/login, /me, error pages).

No template engine, no CDN: a small inline style sheet, every value escaped by the
caller through :func:`esc`, and headers that keep the page out of frames and caches.
Inline scripts run only with the page's CSP nonce.
"""

from __future__ import annotations

import secrets
from html import escape

from fastapi.responses import HTMLResponse

_STYLE = """
:root{color-scheme:light dark;--fg:#1d2330;--muted:#5b6475;--bg:#f6f7f9;--card:#fff;
--line:#dde1e8;--accent:#2456d3;--bad:#b3261e;--ok:#1f7a3d}
@media (prefers-color-scheme:dark){:root{--fg:#e6e9ef;--muted:#a3abbb;--bg:#14171d;
--card:#1c2028;--line:#2d3340;--accent:#7aa2ff;--bad:#ff8a80;--ok:#7bd88f}}
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,sans-serif;color:var(--fg);
background:var(--bg)}header{display:flex;gap:1rem;align-items:center;justify-content:space-between;
padding:.7rem 1.5rem;border-bottom:1px solid var(--line);background:var(--card)}
header .who{color:var(--muted);font-size:.9rem}main{max-width:60rem;margin:1.5rem auto;
padding:0 1rem}section{background:var(--card);border:1px solid var(--line);border-radius:8px;
padding:1rem 1.25rem;margin-bottom:1rem}h1{font-size:1.4rem;margin:0 0 1rem}
h2{font-size:1.1rem;margin:0 0 .6rem}label{display:block;font-weight:600;margin:.4rem 0 .2rem}
input[type=text],input[type=password],input[type=number],select{width:100%;padding:.45rem;
border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg)}
button,.button{display:inline-block;padding:.45rem .9rem;border-radius:6px;border:1px solid
var(--accent);background:var(--accent);color:#fff;cursor:pointer;text-decoration:none;
font:inherit}button.secondary{background:transparent;color:var(--accent)}
.error{color:var(--bad);font-size:.9rem;margin:.2rem 0}.ok{color:var(--ok)}
.muted{color:var(--muted);font-size:.9rem}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);
vertical-align:top}code,pre{font:13px/1.4 ui-monospace,monospace}pre{background:var(--bg);
padding:.6rem;border-radius:6px;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
form.inline{display:inline}
"""


def esc(value: object) -> str:
    """Text for HTML (quotes too, so it is safe inside attributes)."""
    return escape(str(value), quote=True)


def html_page(
    title: str,
    body: str,
    *,
    instance_name: str,
    header_right: str = "",
    status_code: int = 200,
    script: str | None = None,
    form_targets: tuple[str, ...] = (),
) -> HTMLResponse:
    """A full page. ``body`` and ``header_right`` are HTML the caller escaped;
    ``script`` (optional) is inline JavaScript allowed by this response's CSP nonce;
    ``form_targets`` are origins a form here may end up at (a redirect after the post)."""
    nonce = secrets.token_urlsafe(16)
    script_tag = f'<script nonce="{nonce}">{script}</script>' if script else ""
    html = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        # No icon to fetch: the browser would ask for /favicon.ico (a 404 on its console).
        "<link rel='icon' href='data:,'>"
        f"<title>{esc(title)} · {esc(instance_name)}</title><style>{_STYLE}</style></head>"
        f"<body><header><strong>{esc(instance_name)}</strong>"
        f"<div class='who'>{header_right}</div></header><main>{body}</main>"
        f"{script_tag}</body></html>"
    )
    return HTMLResponse(
        html, status_code=status_code, headers=security_headers(nonce, form_targets)
    )


def security_headers(
    nonce: str | None = None, form_targets: tuple[str, ...] = ()
) -> dict[str, str]:
    """No framing, no sniffing, no caching of pages that show personal data. Forms post
    to this origin only, plus ``form_targets`` (browsers apply ``form-action`` to the
    redirect that follows a post too)."""
    script_src = f"'nonce-{nonce}'" if nonce else "'none'"
    form_action = " ".join(("'self'", *form_targets))
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'unsafe-inline'; script-src {script_src}; "
            f"img-src 'self' data:; form-action {form_action}; frame-ancestors 'none'; "
            "base-uri 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }
