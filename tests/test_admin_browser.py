"""The admin app in a real Chromium, against the demo data (few tests, one browser).

``AGNES_SCREENSHOTS=1`` also saves a PNG of every page into ``docs/admin/``:

    AGNES_SCREENSHOTS=1 uv run pytest -q tests/test_admin_browser.py -k every_page
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from agnes_admin.pages import all_pages
from agnes_admin.shell import TITLE_CLASS
from tests.browser_harness import ConsoleLog, open_panel_page, sign_in_with_token
from tests.conftest import DemoServer, running_demo, running_server, unique_email
from tests.mcp_raw import INITIALIZE as MCP_INITIALIZE
from tests.mcp_raw import MCP_HEADERS
from tests.threaded_server import ThreadedServer

pytestmark = pytest.mark.slow

SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "admin"
# Read at import: an autouse fixture clears AGNES_* variables before each test.
TAKE_SCREENSHOTS = os.environ.get("AGNES_SCREENSHOTS") == "1"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with running_demo(tmp_path_factory.mktemp("admin-browser")) as server:
        yield server


def slug_name(slug: str) -> str:
    return slug or "overview"


def test_the_browser_keeps_its_own_files_in_the_sessions_folder(
    chromium: Any, browser_home: Path
) -> None:
    """Not in the user's home (``~/.config/chromium``: its crash reports folder)."""
    assert (browser_home / "config" / "chromium").is_dir()


def test_sign_in_with_a_token_then_admin_renders(demo: DemoServer, browser_context: Any) -> None:
    page = browser_context.new_page()
    base = demo.live.base_url
    sign_in_with_token(page, base, demo.admin_token, next_path="/admin")
    assert page.url.startswith(f"{base}/admin"), page.url
    page.close()
    page = browser_context.new_page()  # a clean console: the admin page's own
    log = ConsoleLog.attach(page)
    response = open_panel_page(page, f"{base}/admin")
    assert response.status == 200
    page.locator(f"h1.{TITLE_CLASS}", has_text="Overview").wait_for()
    assert not log.errors, (log.errors, log.bad_responses)


# The tables (in every shadow root) whose columns run past their width: "<first column>
# <width of the columns>/<width shown>".
TABLES_CUT = """() => {
  const cut = [];
  const walk = (root) => {
    for (const holder of root.querySelectorAll('.tabulator-tableholder')) {
      if (holder.scrollWidth > holder.clientWidth + 1) {
        const first = holder.closest('.tabulator').querySelector('.tabulator-col[tabulator-field]:not([tabulator-field=_index])');
        cut.push(`${first && first.getAttribute('tabulator-field')} ${holder.scrollWidth}/${holder.clientWidth}`);
      }
    }
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot);
  };
  walk(document);
  return cut;
}"""


def test_every_page_renders_without_console_errors(demo: DemoServer, browser_context: Any) -> None:
    base = demo.live.base_url
    demo.live.services.users.add(unique_email("never-seen"))  # shown as last seen 'never'
    sign_in_with_token(browser_context.new_page(), base, demo.admin_token, next_path="/admin")
    for admin_page in all_pages():
        page = browser_context.new_page()  # a page per admin page: its own console log
        log = ConsoleLog.attach(page)
        response = open_panel_page(page, f"{base}{admin_page.path}")
        assert response.status == 200, admin_page.path
        page.locator(f"h1.{TITLE_CLASS}", has_text=admin_page.title).wait_for()
        # Every other page is one click away in the menu.
        for other in all_pages():
            assert page.locator(f"nav.agnes-nav a[href='{other.path}']").count() == 1
        assert not log.errors, (admin_page.path, log.errors)
        assert not log.failed_requests, log.failed_requests
        assert not log.bad_responses, (admin_page.path, log.bad_responses)  # /components too
        # Nothing wider than the window (a 1280 px one): no sideways scrolling to reach a
        # filter (the audit log's "Until" was off the page) or the page's edge.
        wide = page.evaluate("() => document.documentElement.scrollWidth")
        assert wide <= 1280, (admin_page.path, wide)
        # Nor a table wider than the page, its last columns (the registry's next run, the
        # marketplaces' Sync buttons) behind a sideways scroll inside the table.
        cut = page.evaluate(TABLES_CUT)
        assert not cut, (admin_page.path, cut)
        if admin_page.path == "/admin/tokens":  # what folds is never whether a token works
            status = page.locator(".tabulator-col[tabulator-field='status']").first
            status.wait_for(state="attached")
            assert status.is_visible()
        if admin_page.path == "/admin/access":  # sorted oldest first, 'never' comes first
            page.locator(".tabulator-col[tabulator-field='last_seen']").first.click()
            seen = page.locator(".tabulator-row .tabulator-cell[tabulator-field='last_seen']")
            expect(seen.first).to_have_text("never")
            shown = seen.all_inner_texts()
            assert shown == sorted(shown, key=lambda t: "" if t == "never" else t), shown
        external = [u for u in log.requests if not u.startswith((base, "data:", "blob:"))]
        assert not external, external  # no CDN: every asset comes from this server
        if TAKE_SCREENSHOTS:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(SCREENSHOTS / f"{slug_name(admin_page.slug)}.png"))
        page.close()


def test_a_narrow_window_puts_the_menu_above_the_page(
    demo: DemoServer, browser_context: Any
) -> None:
    """At phone width the menu (190 px) sat beside the page and squeezed it into the rest;
    the page now takes the whole width, under the menu. Wide windows keep the side menu."""
    base = demo.live.base_url
    sign_in_with_token(browser_context.new_page(), base, demo.admin_token, next_path="/admin")
    page = browser_context.new_page()
    for width, beside in ((420, False), (1280, True)):
        page.set_viewport_size({"width": width, "height": 800})
        open_panel_page(page, f"{base}/admin/access")
        menu = page.locator("nav.agnes-nav").bounding_box()
        title = page.locator(f"h1.{TITLE_CLASS}").bounding_box()
        assert menu is not None and title is not None
        assert (title["x"] >= menu["x"] + menu["width"]) is beside, (width, menu, title)
        assert (title["y"] >= menu["y"] + menu["height"]) is not beside, (width, menu, title)


def test_a_tab_renders_its_content_when_opened(demo: DemoServer, browser_context: Any) -> None:
    """Tabs send a hidden tab's widgets to the browser only when it is opened (the page's
    first paint carries less): each one still shows its content, working."""
    base = demo.live.base_url
    sign_in_with_token(browser_context.new_page(), base, demo.admin_token, next_path="/admin")
    opened = {
        "/admin/tables": [("Register a table", "Pick a source, then one of its tables")],
        "/admin/access": [("Groups", "Create a group"), ("Grants", "Grant a resource")],
    }
    for path, tabs in opened.items():
        page = browser_context.new_page()
        log = ConsoleLog.attach(page)
        open_panel_page(page, f"{base}{path}")
        for tab, text in tabs:
            assert page.get_by_text(text).count() == 0, (path, tab)  # not sent before
            page.locator(".bk-tab", has_text=tab).first.click()
            page.get_by_text(text).first.wait_for()
        if path == "/admin/tables":  # the form works: a source offers its tables
            page.locator("select").filter(has_text="files").first.select_option("files")
            page.locator(".tabulator-row").first.wait_for()
        assert not log.errors, (path, log.errors)
        page.close()


def test_an_analyst_sees_me_and_gets_403_on_admin(demo: DemoServer, browser_context: Any) -> None:
    page = browser_context.new_page()
    log = ConsoleLog.attach(page)
    base = demo.live.base_url
    sign_in_with_token(page, base, demo.analyst_token, next_path="/me")
    assert page.url.startswith(f"{base}/me"), page.url
    assert log.errors == []  # the sign-in page and /me: no request fails (no favicon 404)
    response = page.goto(f"{base}/admin")
    assert response.status == 403
    assert page.get_by_role("link", name="/me").count() == 1


def _admin_page(demo: DemoServer, browser_context: Any, path: str) -> Any:
    base = demo.live.base_url
    sign_in_with_token(browser_context.new_page(), base, demo.admin_token, next_path="/admin")
    page = browser_context.new_page()
    open_panel_page(page, f"{base}{path}")
    return page


def _field(page: Any, label: str) -> Any:
    """The input of the Panel widget labelled ``label`` (locators pierce the shadow DOM)."""
    return page.locator(".bk-input-group", has=page.get_by_text(label, exact=True)).locator("input")


def test_a_result_limit_changed_in_settings_is_enforced_by_the_api(
    demo: DemoServer, browser_context: Any
) -> None:
    base = demo.live.base_url
    query = {"sql": "SELECT customer_id FROM customers ORDER BY 1"}
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {demo.analyst_token}"}
    ) as api:
        before = api.post("/api/query", json=query).json()
        assert len(before["rows"]) > 3 and not before["truncated"]
        page = _admin_page(demo, browser_context, "/admin/settings")
        box = _field(page, "max_result_rows")
        box.fill("3")
        box.press("Enter")  # Enter in a limit's field saves the limits
        page.get_by_text("Saved: max_result_rows. In force now.").wait_for()
        try:
            after = api.post("/api/query", json=query).json()
            assert len(after["rows"]) == 3
            assert after["truncated"] is True
        finally:  # the demo server is shared by this module's tests: back to the default
            demo.live.services.server_config.delete("scan_caps.max_result_rows")
        assert len(api.post("/api/query", json=query).json()["rows"]) == len(before["rows"])


def test_rails_pasted_past_the_limit_are_refused_not_cut_and_saved(
    demo: DemoServer, browser_context: Any
) -> None:
    """The browser used to cut a paste at the field's maxlength and save the cut text."""
    from agnes_mcp.server_config_admin import INSTRUCTIONS_MAX_CHARS

    stored = demo.live.services.agent_instructions()
    page = _admin_page(demo, browser_context, "/admin/settings")
    box = page.locator(".bk-input-group", has=page.get_by_text("Agent rails (Markdown)")).locator(
        "textarea"
    )
    box.fill("r" * (INSTRUCTIONS_MAX_CHARS + 1))
    box.press("Tab")  # the value reaches the server on change
    page.get_by_role("button", name="Save rails").click()
    page.get_by_text(f"The text has {INSTRUCTIONS_MAX_CHARS + 1} characters").wait_for()
    assert len(box.input_value()) == INSTRUCTIONS_MAX_CHARS + 1  # still all there
    assert demo.live.services.agent_instructions() == stored


def test_a_token_created_in_the_tokens_page_works_until_revoked_there(
    demo: DemoServer, browser_context: Any
) -> None:
    base = demo.live.base_url
    browser_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = _admin_page(demo, browser_context, "/admin/tokens")
    log = ConsoleLog.attach(page)
    _field(page, "Name").fill("made in the browser")
    _field(page, "Name").press("Enter")  # Enter in the field creates it, as a form would
    page.get_by_text("Created token 'made in the browser'").wait_for()
    raw = _field(page, "The new token (shown once)").input_value()
    assert raw.startswith("agnes_")
    # The copy button runs the callback the server sent (compiled in the page: the CSP
    # refused it, and the clipboard stayed empty).
    page.get_by_role("button", name="Copy to clipboard").click()
    page.wait_for_function("async (raw) => (await navigator.clipboard.readText()) === raw", arg=raw)
    assert not log.errors, log.errors
    whoami = httpx.get(f"{base}/api/whoami", headers={"Authorization": f"Bearer {raw}"})
    assert whoami.status_code == 200
    # Select the new token's row in the table, revoke it and confirm.
    page.locator(".tabulator-row", has_text="made in the browser").first.click()
    page.get_by_role("button", name="Revoke selected token").click()
    page.get_by_role("button", name="Confirm", exact=True).click()
    page.locator(".tabulator-row", has_text="made in the browser").filter(
        has_text="revoked"
    ).first.wait_for()
    refused = httpx.get(f"{base}/api/whoami", headers={"Authorization": f"Bearer {raw}"})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "token_revoked"


FOCUSED = """() => {
  let e = document.activeElement;
  while (e && e.shadowRoot && e.shadowRoot.activeElement) e = e.shadowRoot.activeElement;
  return e ? (e.tagName + ' ' + (e.textContent || '').trim()).slice(0, 80) : '';
}"""


FOCUSED_CLASS = """() => {
  let e = document.activeElement;
  while (e && e.shadowRoot && e.shadowRoot.activeElement) e = e.shadowRoot.activeElement;
  return e ? String(e.className) : '';
}"""


def test_tab_moves_past_a_table_to_the_next_control(demo: DemoServer, browser_context: Any) -> None:
    """A keyboard-only admin Tabs through the Tokens page: Tab from the table fell on a
    cell that blurred itself, focus dropped to the body, and no control after the table
    (Revoke, the create form) was ever reached."""
    page = _admin_page(demo, browser_context, "/admin/tokens")
    page.locator(".tabulator-row").first.wait_for()  # the page has rendered its controls
    page.locator(f"h1.{TITLE_CLASS}").click()  # Tab from the top of the page's own part
    seen: list[str] = []
    for _ in range(40):
        page.keyboard.press("Tab")
        seen.append(page.evaluate(FOCUSED))
        if seen[-1].startswith("BUTTON Revoke selected token"):
            break
    assert seen[-1].startswith("BUTTON Revoke selected token"), seen
    assert not [s for s in seen if s.startswith("BODY")], seen
    page.close()


def test_enter_on_a_tab_title_opens_the_tab_and_tab_goes_into_it(
    demo: DemoServer, browser_context: Any
) -> None:
    """A tab's title took focus but answered only the mouse: a keyboard-only admin could
    not open Groups or Grants (nor Register a table, nor a table's Edit)."""
    page = _admin_page(demo, browser_context, "/admin/access")
    page.locator(".bk-tab", has_text="Groups").first.focus()
    page.keyboard.press("Enter")
    page.get_by_text("Create a group").first.wait_for()
    page.wait_for_function(
        "() => { let e = document.activeElement;"
        " while (e && e.shadowRoot && e.shadowRoot.activeElement) e = e.shadowRoot.activeElement;"
        " return e !== null && e.classList.contains('bk-tab') && e.textContent === 'Groups'; }"
    )  # focus stays on the title just opened
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # past the Grants title, into the Groups tab's content
    assert "tabulator-tableholder" in page.evaluate(FOCUSED_CLASS), page.evaluate(FOCUSED)
    page.keyboard.press("Shift+Tab")
    page.keyboard.press(" ")  # Space opens a tab too
    page.get_by_text("Grant a resource").first.wait_for()
    page.close()


def test_the_arrows_and_enter_choose_a_row_of_a_focused_table(
    demo: DemoServer, browser_context: Any
) -> None:
    """A row answered only the mouse: a keyboard-only admin could not choose a table (its
    history, profile and Edit), a token to revoke or a user to deactivate."""
    page = _admin_page(demo, browser_context, "/admin/tables")
    first, second = page.locator(".tabulator-row").nth(0), page.locator(".tabulator-row").nth(1)
    second.wait_for()
    chosen = second.locator(".tabulator-cell[tabulator-field=id]").inner_text()
    page.locator(".tabulator-tableholder").first.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.locator("h3", has_text=chosen).wait_for()  # the chosen table's details
    assert "tabulator-selected" in (second.get_attribute("class") or "")
    assert "tabulator-selected" not in (first.get_attribute("class") or "")
    page.close()
    # A row's own button (a marketplace's Sync): the right arrow marks it, Enter presses it.
    page = browser_context.new_page()  # signed in already
    open_panel_page(page, f"{demo.live.base_url}/admin/marketplaces")
    row = page.locator(".tabulator-row").first
    slug = row.locator(".tabulator-cell[tabulator-field=slug]").inner_text()
    page.locator(".tabulator-tableholder").first.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    page.get_by_text(re.compile(f"^'{re.escape(slug)}' (synced|failed)")).first.wait_for()
    page.close()


def test_forged_guest_stale_session_and_cross_site_post_are_refused(
    demo: DemoServer, browser_context: Any
) -> None:
    base = demo.live.base_url
    page = browser_context.new_page()
    # Panel's own notion of a user is a cookie anyone can set: it opens nothing.
    browser_context.add_cookies([{"name": "is_guest", "value": "1", "url": base}])
    page.goto(f"{base}/admin")
    assert "/auth/login" in page.url
    # A session that signed out stays out, even with its old cookie put back.
    sign_in_with_token(page, base, demo.admin_token, next_path="/admin")
    old = [c for c in browser_context.cookies() if c["name"] == "agnes_session"]
    page.goto(f"{base}/me")
    with page.expect_navigation():
        page.get_by_role("button", name="Sign out").first.click()
    browser_context.add_cookies(old)
    page.goto(f"{base}/admin")
    assert "/auth/login" in page.url
    # A form on another site posting a token to this server is refused.
    sign_in_with_token(page, base, demo.admin_token, next_path="/me")
    with ThreadedServer(_evil_site(base)) as evil:
        page.goto(evil.url)
        with page.expect_navigation():
            page.locator("button").click()
        assert page.url.startswith(base)
        assert "agnes_" not in page.content()
    tokens = httpx.get(
        f"{base}/api/tokens", headers={"Authorization": f"Bearer {demo.admin_token}"}
    ).json()["tokens"]
    assert not [t for t in tokens if t["name"] == "cross-site"]


def _evil_site(target: str) -> Any:
    """Another origin serving a form that posts to this server's /me token form."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    async def home(_: Any) -> HTMLResponse:
        return HTMLResponse(
            f"<form method='post' action='{target}/me/tokens'>"
            "<input name='name' value='cross-site'><button>go</button></form>"
        )

    return Starlette(routes=[Route("/", home)])


def _mcp_status(base: str, token: str) -> int:
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {token}"}
    return httpx.post(f"{base}/mcp", json=MCP_INITIALIZE, headers=headers).status_code


def test_an_oauth_grant_is_revoked_on_the_tokens_page(
    demo: DemoServer, browser_context: Any
) -> None:
    services, base = demo.live.services, demo.live.base_url
    analyst = services.tokens.authenticate(demo.analyst_token, record_use=False)
    client = f"Browser grant {secrets.token_hex(3)}"
    issued = services.oauth.start_grant(
        user_id=analyst.user_id,
        client_id="browser-grant-client",
        client_name=client,
        scopes=["data"],
        resource=f"{base}/mcp",
    )
    assert _mcp_status(base, issued.access_token) == 200
    page = _admin_page(demo, browser_context, "/admin/tokens")
    row = page.locator(".tabulator-row", has_text=client).first
    row.filter(has_text=analyst.email).filter(has_text="active").wait_for()
    row.click()
    page.get_by_role("button", name="Revoke selected grant").click()
    page.get_by_role("button", name="Confirm", exact=True).click()
    page.get_by_text("Revoked the OAuth grant").wait_for()
    page.locator(".tabulator-row", has_text=client).filter(has_text="revoked").first.wait_for()
    assert services.oauth.grant(issued.grant.id).revoked_at is not None
    assert _mcp_status(base, issued.access_token) == 401
    assert _mcp_status(base, demo.analyst_token) == 200  # the analyst's PAT keeps working


@dataclass
class _Callback:
    """A local redirect target (an MCP client's loopback listener): the first request's
    query, and an event set when it arrives."""

    url: str
    arrived: threading.Event = field(default_factory=threading.Event)
    query: dict[str, str] = field(default_factory=dict)


class _IPv6Server(HTTPServer):
    address_family = socket.AF_INET6


@contextmanager
def _callback_server(host: str = "127.0.0.1") -> Iterator[_Callback]:
    """A listener on ``host``: ``127.0.0.1``, or ``::1`` (the URL names it ``[::1]``)."""
    server_class = _IPv6Server if ":" in host else HTTPServer
    server = server_class((host, 0), BaseHTTPRequestHandler)
    named = f"[{host}]" if ":" in host else host
    callback = _Callback(f"http://{named}:{server.server_address[1]}/callback")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<p>Signed in. You can close this window.</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            if urlsplit(self.path).path == "/callback" and not callback.arrived.is_set():
                query = parse_qs(urlsplit(self.path).query)
                callback.query.update({k: v[0] for k, v in query.items()})
                callback.arrived.set()

        def log_message(self, *args: object) -> None:
            pass

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield callback
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_the_consent_page_sends_the_browser_back_to_the_client(
    demo: DemoServer, browser_context: Any, host: str
) -> None:
    """The real consent in Chromium: the page's CSP ``form-action`` must let the browser
    follow Allow's redirect to the client's loopback listener, an IPv6 one too (CSP
    cannot name ``[::1]``: a source naming it is dropped, and Allow went nowhere)."""
    base = demo.live.base_url
    with _callback_server(host) as callback:
        registered = httpx.post(
            f"{base}/register",
            json={
                "client_name": "Chromium test client",
                "redirect_uris": [callback.url],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
            },
        )
        assert registered.status_code == 201, registered.text
        client_id = registered.json()["client_id"]
        verifier = secrets.token_urlsafe(48)
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        state = secrets.token_urlsafe(16)
        authorize = f"{base}/authorize?" + urlencode(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": callback.url,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "state": state,
                "scope": "data",
                "resource": f"{base}/mcp",
            }
        )
        page = browser_context.new_page()
        sign_in_with_token(page, base, demo.analyst_token, next_path="/me")
        page.goto(authorize)
        page.get_by_text("Chromium test client").first.wait_for()
        page.get_by_role("button", name="Allow").click()
        assert callback.arrived.wait(timeout=30), "the browser never reached the callback"
    assert callback.query["state"] == state
    assert callback.query["code"]
    tokens = httpx.post(
        f"{base}/token",
        data={
            "grant_type": "authorization_code",
            "code": callback.query["code"],
            "redirect_uri": callback.url,
            "client_id": client_id,
            "code_verifier": verifier,
            "resource": f"{base}/mcp",
        },
    )
    assert tokens.status_code == 200, tokens.text
    assert _mcp_status(base, tokens.json()["access_token"]) == 200


def test_a_marketplace_added_in_the_page_is_listed_with_its_plugins(
    demo: DemoServer, browser_context: Any, tmp_path: Path
) -> None:
    from tests.test_api_marketplaces import seed_plugins

    live = demo.live
    page = _admin_page(demo, browser_context, "/admin/marketplaces")
    _field(page, "Slug").fill("browser-team")
    _field(page, "URL").fill(str(tmp_path / "not-yet.git"))
    _field(page, "URL").press("Enter")  # Enter in the form's field adds it
    # the first sync's outcome follows, with no Refresh
    page.get_by_text("Added marketplace 'browser-team'. 'browser-team' failed:").wait_for()
    page.locator(".tabulator-row", has_text="browser-team").first.wait_for()
    assert live.services.marketplaces.get("browser-team").url == str(tmp_path / "not-yet.git")

    seed_plugins(live.services, "browser-team", "seeded-plugin")
    page.get_by_role("button", name="Refresh").click()
    row = page.locator(".tabulator-row", has_text="browser-team/seeded-plugin").first
    row.filter(has_text="The seeded-plugin plugin").wait_for()
    # The row's own Sync button (a Tabulator button cell) reaches the page.
    marketplace = page.locator(".tabulator-row", has_text=str(tmp_path / "not-yet.git")).first
    marketplace.get_by_role("gridcell", name="Sync", exact=True).click()
    page.get_by_text(re.compile("^'browser-team' failed:")).wait_for()
    assert live.services.marketplaces.get("browser-team").last_sync_outcome == "failed"


BROWSER_MCP_CLIENT = """async ([base, token, initialize]) => {
  const json = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"};
  const metadata = await (await fetch(base + "/.well-known/oauth-protected-resource/mcp",
    {headers: {"MCP-Protocol-Version": "2025-06-18"}})).json();
  const refused = await fetch(base + "/mcp", {method: "POST", headers: json, body: "{}"});
  const started = await fetch(base + "/mcp", {method: "POST",
    headers: {...json, "Authorization": "Bearer " + token, "MCP-Protocol-Version": "2025-06-18"},
    body: JSON.stringify(initialize)});
  return {resource: metadata.resource, refused: refused.status,
          challenge: refused.headers.get("www-authenticate"), started: started.status,
          session: started.headers.get("mcp-session-id"),
          server: (await started.json()).result.serverInfo.name};
}"""


def test_a_browser_mcp_client_discovers_and_calls_from_an_allowed_origin(
    demo: DemoServer, browser_context: Any
) -> None:
    """An MCP client running in a page (like the Inspector's UI on a loopback port): it
    read the authorization server's metadata, but not the protected resource metadata
    the 401 points at, nor WWW-Authenticate or Mcp-Session-Id (no CORS headers)."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    async def home(_: Any) -> HTMLResponse:
        return HTMLResponse("<p>an MCP client</p>")

    base = demo.live.base_url
    page = browser_context.new_page()
    log = ConsoleLog.attach(page)
    with ThreadedServer(Starlette(routes=[Route("/", home)])) as client_site:
        page.goto(client_site.url)
        seen = page.evaluate(BROWSER_MCP_CLIENT, [base, demo.analyst_token, MCP_INITIALIZE])
    assert seen["resource"] == f"{base}/mcp"
    assert seen["refused"] == 401 and "resource_metadata=" in (seen["challenge"] or "")
    assert seen["started"] == 200 and seen["session"] and seen["server"]
    assert not [e for e in log.errors if "CORS" in e or "Access-Control" in e], log.errors
    page.close()


BROWSER_BASIC_CLIENT = """async ([base]) => {
  const headers = {"Authorization": "Basic " + btoa("no-such-client:secret"),
                   "Content-Type": "application/x-www-form-urlencoded"};
  const bodies = {"/token": "grant_type=refresh_token&refresh_token=agnesrt_x",
                  "/revoke": "token=agnesrt_x"};
  const seen = {};
  for (const [path, body] of Object.entries(bodies)) {
    try {
      const answer = await fetch(base + path, {method: "POST", headers, body});
      seen[path] = {status: answer.status, error: (await answer.json()).error,
                    challenge: answer.headers.get("www-authenticate")};
    } catch (error) {
      seen[path] = {blocked: String(error)};
    }
  }
  return seen;
}"""


def test_a_browser_client_may_authenticate_with_basic_at_token_and_revoke(
    demo: DemoServer, browser_context: Any
) -> None:
    """A ``client_secret_basic`` client in a page (the MCP TypeScript SDK's first choice
    when it holds a secret) sends ``Authorization``: the preflight must allow it, or the
    browser never sends the request; the refusal and its challenge are readable."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    async def home(_: Any) -> HTMLResponse:
        return HTMLResponse("<p>an MCP client</p>")

    page = browser_context.new_page()
    with ThreadedServer(Starlette(routes=[Route("/", home)])) as client_site:
        page.goto(client_site.url)
        seen = page.evaluate(BROWSER_BASIC_CLIENT, [demo.live.base_url])
    for path in ("/token", "/revoke"):
        assert seen[path]["status"] == 401, seen
        assert seen[path]["error"] == "invalid_client", seen
        assert (seen[path]["challenge"] or "").startswith("Basic"), seen
    page.close()


def test_a_metrics_sql_stays_within_the_window(demo: DemoServer, browser_context: Any) -> None:
    """A metric's definition and its DuckDB and BigQuery SQL side by side widened the page
    past a 1280 px window; long lines now wrap inside their half."""
    page = _admin_page(demo, browser_context, "/admin/metrics")
    row = page.locator(".tabulator-row", has_text="sales/pipeline").first
    row.click()
    page.get_by_text("pipeline", exact=False).first.wait_for()
    page.locator("pre", has_text="NOT EXISTS").first.wait_for()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1280


def test_an_open_page_says_so_when_the_server_goes_away(
    tmp_path: Path, browser_context: Any
) -> None:
    """A page whose server stopped (a restart, a network drop) went on looking live, and
    every click was dropped in the browser ("not connected so cannot send") without a
    word. It now shows a banner saying so, with a link that loads the page again."""
    from agnes_admin.shell import CONNECTION_LOST_ID

    page = browser_context.new_page()
    with running_server(tmp_path / "data") as live:
        sign_in_with_token(page, live.base_url, live.admin_token, next_path="/admin")
        open_panel_page(page, f"{live.base_url}/admin/tokens")
        assert page.locator(f"#{CONNECTION_LOST_ID}").count() == 0  # live: no banner
    banner = page.locator(f"#{CONNECTION_LOST_ID}")
    banner.wait_for()  # the server has stopped: the page says so
    assert "connection to the server was lost" in banner.inner_text()
    assert banner.get_attribute("role") == "alert"
    assert banner.get_by_text("Reload the page").get_attribute("href") == (
        f"{live.base_url}/admin/tokens"
    )
    page.close()
