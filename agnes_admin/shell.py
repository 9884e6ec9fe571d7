"""The frame around every admin page: the instance name, the signed-in admin with a link
to their own page and a sign-out form, a menu of every registered page, the page's title
and its body. Plain Panel layouts (no template): fewer files to load, and ``shell`` can
be built and inspected in plain Python without a server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import panel as pn

import agnes_admin.markdown_text  # noqa: F401 - Markdown panes render HTML as text
from agnes_admin.context import PageContext
from agnes_admin.pages import Page, all_pages
from agnes_admin.row_keys import choose_rows_by_keyboard
from agnes_admin.tab_keys import open_tabs_by_keyboard
from agnes_mcp.services import Services
from agnes_mcp.web_layout import esc
from agnes_sync.errors import AgnesError

logger = logging.getLogger("agnes.admin")

TITLE_CLASS = "agnes-page-title"
LOGOUT_PATH = "/auth/logout"
FAVICON = "/static/extensions/panel/images/favicon.ico"
# Each Panel pane renders in its own shadow root: the sheet is given to every pane.
STYLE = """
.agnes-bar{display:flex;align-items:center;justify-content:space-between;gap:1rem;
font:14px/1.4 system-ui,sans-serif;padding:.3rem .2rem}
.agnes-bar form{display:inline;margin:0}.agnes-bar button{font:inherit;cursor:pointer}
.agnes-nav{font:14px/1.4 system-ui,sans-serif}.agnes-nav a{display:block;padding:.35rem .6rem;
border-radius:6px;text-decoration:none;color:inherit}.agnes-nav a:hover{background:rgba(0,0,0,.05)}
.agnes-nav a.current{font-weight:600;background:rgba(36,86,211,.12)}
h1.agnes-page-title{font:600 1.4rem system-ui,sans-serif;margin:.2rem 0 .6rem}
table.agnes-summary th{text-align:left;padding-right:1.2rem;font-weight:600}
.error{color:#b3261e}
"""


def header_html(instance_name: str, email: str, csrf: str) -> str:
    return (
        f"<div class='agnes-bar'><strong>{esc(instance_name)} admin</strong>"
        f"<span>{esc(email)} · <a href='/me'>My page</a> · "
        f"<form method='post' action='{LOGOUT_PATH}'>"
        f"<input type='hidden' name='csrf' value='{esc(csrf)}'>"
        "<button type='submit'>Sign out</button></form></span></div>"
    )


def nav_html(current: Page, pages: list[Page]) -> str:
    links = "".join(
        f"<a href='{esc(page.path)}'"
        + (" class='current' aria-current='page'" if page.slug == current.slug else "")
        + f">{esc(page.title)}</a>"
        for page in pages
    )
    return f"<nav class='agnes-nav'>{links}</nav>"


def problem(text: str) -> pn.pane.Alert:
    return pn.pane.Alert(text, alert_type="danger")


def page_body(page: Page, ctx: PageContext) -> Any:
    """The page's own content; a failure shows as a message in the frame, not a blank tab."""
    try:
        return page.build(ctx)
    except AgnesError as exc:
        return problem(exc.message)
    except Exception:  # a page's bug must not take the frame (and the way out) with it
        logger.exception("admin page %s failed to build", page.path)
        return problem("This page failed to load; the server log has the details.")


def shell(page: Page, ctx: PageContext, pages: list[Page]) -> pn.Column:
    """Everything served at ``page.path`` for the admin of ``ctx``."""
    actor = ctx.actor()
    settings = ctx.services.settings
    header = pn.pane.HTML(
        header_html(settings.instance_name, actor.email, ctx.csrf()),
        sizing_mode="stretch_width",
        # Side margins on a stretched pane add to its 100% width: the page scrolled
        # sideways by them. The room at the sides is padding inside it instead.
        margin=0,
        styles={"padding": "0 10px", "box-sizing": "border-box"},
        stylesheets=[STYLE],
    )
    nav = pn.pane.HTML(nav_html(page, pages), width=190, margin=(10, 10), stylesheets=[STYLE])
    title = pn.pane.HTML(
        f"<h1 class='{TITLE_CLASS}'>{esc(page.title)}</h1>", margin=(0, 10), stylesheets=[STYLE]
    )
    # The menu and the page wrap: beside each other in a wide window, the page under the
    # menu (at full width) when the window is narrower than the menu and 560 px of page.
    main = pn.Column(
        title,
        page_body(page, ctx),
        sizing_mode="stretch_width",
        styles={"flex": "1 1 560px", "min-width": "0"},
    )
    return pn.Column(
        header,
        pn.layout.Divider(margin=0, styles={"padding": "0 10px", "box-sizing": "border-box"}),
        pn.FlexBox(nav, main, flex_wrap="wrap", sizing_mode="stretch_width"),
        sizing_mode="stretch_width",
    )


def page_app(page: Page, services: Services, pages: list[Page]) -> Callable[[], Any]:
    """The Panel app function serving ``page``: who is asking comes from the session the
    gate vouched for (:meth:`PageContext.current`), never from ``pn.state.user``."""

    def serve() -> Any:
        if pn.state.curdoc is not None:  # Panel's default is a relative ./favicon.ico (404)
            pn.state.curdoc.template_variables["app_favicon"] = FAVICON
        try:
            ctx = PageContext.current(services)
        except AgnesError as exc:
            return problem(f"{exc.message} Sign in again at /auth/login.")
        view = shell(page, ctx, pages)
        if pn.state.curdoc is not None:
            watch: list[Any] = []

            def check() -> None:
                if end_if_signed_out(ctx, view) and watch:
                    watch[0].stop()

            watch.append(pn.state.add_periodic_callback(check, period=SESSION_CHECK_MS))
            say_when_connection_lost(pn.state.curdoc)
            open_tabs_by_keyboard(pn.state.curdoc)
            choose_rows_by_keyboard(pn.state.curdoc)
        return view

    return serve


CONNECTION_LOST_ID = "agnes-connection-lost"
CONNECTION_LOST = (
    "The connection to the server was lost (you signed out, the server restarted or the "
    "network dropped): "
    "nothing done on this page reaches the server now."
)
# Run by the browser (a callback the page's own scripts compile; no inline script): a
# banner over the page, as text, with a link that loads the page again.
CONNECTION_LOST_JS = """
if (document.getElementById(id) === null) {
  const bar = document.createElement('div');
  bar.id = id;
  bar.setAttribute('role', 'alert');
  bar.style.cssText = 'position:fixed;top:0;left:0;right:0;z-index:10000;padding:.6rem 1rem;' +
    'background:#b3261e;color:#fff;font:14px/1.4 system-ui,sans-serif';
  bar.textContent = message + ' ';
  const reload = document.createElement('a');
  reload.href = window.location.href;
  reload.textContent = 'Reload the page';
  reload.style.color = '#fff';
  bar.appendChild(reload);
  document.body.prepend(bar);
  reload.focus();
}
"""


def say_when_connection_lost(doc: Any) -> None:
    """Show a banner once the page's websocket is gone (a server restart, a network drop):
    the page went on looking live while every click was dropped in the browser."""
    from bokeh.models import CustomJS

    doc.js_on_event(
        "connection_lost",
        CustomJS(
            args={"id": CONNECTION_LOST_ID, "message": CONNECTION_LOST}, code=CONNECTION_LOST_JS
        ),
    )


# How often an open page checks that its admin may still use it (signed in, active, an
# admin). Changes re-check at each action; this ends the page's reads too.
SESSION_CHECK_MS = 2_000


def end_if_signed_out(ctx: PageContext, view: pn.Column) -> bool:
    """Replace the page with a message once its session ended or its admin lost the right
    (signed out, revoked, deactivated, demoted): an open tab shows no more data. True when
    it did."""
    try:
        ctx.actor(touch=False)  # a check, not the admin's doing: the idle clock runs on
    except AgnesError as exc:
        view.objects = [problem(f"{exc.message} Sign in again at /auth/login.")]
        return True
    return False


def page_apps(services: Services) -> tuple[dict[str, Callable[[], Any]], dict[str, str]]:
    """One app and one window title per registered page, keyed by its path."""
    pages = all_pages()
    name = services.settings.instance_name
    apps = {page.path: page_app(page, services, pages) for page in pages}
    titles = {page.path: f"{page.title} · {name} admin" for page in pages}
    return apps, titles
