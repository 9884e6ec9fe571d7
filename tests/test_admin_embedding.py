"""The Panel admin app inside the FastAPI host, without a browser: the gate, what a served
page carries, websockets, /static, readiness, and the overview page in plain Python."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Match, Mount, Route
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin, Subprotocol

from agnes_mcp.api.admin_gate import AdminGate, AdminReadiness, ReadyState
from agnes_mcp.api.app import create_app
from agnes_mcp.auth.sessions import LOGIN_CSRF_COOKIE, SESSION_COOKIE
from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
from agnes_mcp.services import Services
from tests.conftest import add_user, make_settings, register, token_for
from tests.threaded_server import ThreadedServer

TOKEN_IN_PAGE = re.compile(r'"token":"([^"]+)"')


@dataclass
class AdminServer:
    url: str
    app: Any
    services: Services

    def cookie_for(self, *, admin: bool) -> tuple[str, str]:
        """A signed-in user's (session id, cookie value)."""
        user = add_user(self.services, (ADMIN_GROUP_ID,) if admin else ())
        session, cookie = self.services.web_sessions.sign_in(user.id, "token")
        return session.id, cookie

    def client(self, cookie: str | None = None, **kwargs: Any) -> httpx.Client:
        cookies = {SESSION_COOKIE: cookie} if cookie else {}
        return httpx.Client(base_url=self.url, cookies=cookies, timeout=60, **kwargs)


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminServer]:
    settings = make_settings(tmp_path_factory.mktemp("admin") / "data", write_behind_seconds=0.05)
    services = Services.open(settings)
    app = create_app(services)
    try:
        with ThreadedServer(app) as server:
            readiness: AdminReadiness = app.state.admin_readiness
            assert readiness.state is not ReadyState.ABSENT  # the entry point was installed
            yield AdminServer(server.url, app, services)
    finally:
        services.close()


def token_payload(token: str) -> dict[str, Any]:
    """Decode a Bokeh session token: base64url JSON whose extra payload (headers,
    cookies, arguments) is zlib-compressed base64url under ``__bk__zlib_``."""

    def unb64(text: str) -> bytes:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    outer = json.loads(unb64(token.split(".")[0]))
    inner = json.loads(zlib.decompress(unb64(outer.pop("__bk__zlib_"))))
    return {**outer, **inner}


def page_tokens(html: str) -> list[dict[str, Any]]:
    tokens = TOKEN_IN_PAGE.findall(html)
    assert tokens, "no Bokeh session token in the page"
    return [token_payload(t) for t in tokens]


# --- what a served page carries ---------------------------------------------------------


def test_served_page_carries_no_credential(admin_server: AdminServer) -> None:
    session_id, cookie = admin_server.cookie_for(admin=True)
    bearer = token_for(admin_server.services, add_user(admin_server.services), admin=False)
    login_csrf = "csrf-nonce-4f1b2c3d4e5f60718293a4b5c6d7e8f9"
    with admin_server.client(cookie) as client:
        client.cookies.set(LOGIN_CSRF_COOKIE, login_csrf)
        client.cookies.set("is_guest", "1")
        response = client.get(
            "/admin",
            headers={
                "Authorization": f"Bearer {bearer}",
                "X-Agnes-Session-Ref": "forged",
                "X-Agnes-Client-Ip": "203.0.113.66",  # forged too
            },
        )
    assert response.status_code == 200, response.text[:500]
    assert response.headers["x-frame-options"] == "DENY"
    html = response.text
    payloads = page_tokens(html)
    decoded = json.dumps(payloads)
    for secret in (cookie, bearer, login_csrf, cookie.split(".")[-1]):
        assert secret not in html
        assert secret not in decoded
    for payload in payloads:
        assert payload["cookies"] == {}
        assert payload["headers"] == {  # ours, not forged: the session and the client
            "X-Agnes-Session-Ref": session_id,
            "X-Agnes-Client-Ip": "127.0.0.1",
        }


NONCE = re.compile(r"script-src 'self' 'nonce-([A-Za-z0-9_-]{20,})'[ ;]")


def test_a_page_runs_only_its_own_scripts(admin_server: AdminServer) -> None:
    """A Content-Security-Policy with a fresh nonce per answer, carried by every script
    the page has (an injected inline script or event handler carries none), connections
    only back to this server."""
    _, cookie = admin_server.cookie_for(admin=True)
    nonces = []
    with admin_server.client(cookie) as client:
        for _ in range(2):
            response = client.get("/admin")
            assert response.status_code == 200
            policy = response.headers["content-security-policy"]
            found = NONCE.search(policy)
            assert found, policy
            nonces.append(found.group(1))
            scripts = re.findall(r"<script[^>]*>", response.text)
            assert scripts and all(f'nonce="{found.group(1)}"' in tag for tag in scripts)
            assert int(response.headers["content-length"]) == len(response.content)
            assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
            assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
            host = response.request.url.netloc.decode()
            assert f"connect-src 'self' ws://{host} wss://{host};" in policy
    assert nonces[0] != nonces[1]


def test_the_page_is_built_for_the_session_the_gate_vouched_for(
    admin_server: AdminServer,
) -> None:
    _, cookie = admin_server.cookie_for(admin=True)
    with admin_server.client(cookie) as client:
        page = client.get("/admin")
    assert page.status_code == 200
    # The document is built at GET; a problem alert would show "without a session".
    assert "Overview" in page.text
    assert "without a session" not in page.text


# --- the gate ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected_next"),
    [
        ("/admin", "/admin"),
        ("/admin/tables?source=files", "/admin/tables%3Fsource%3Dfiles"),
        ("/components/panel/x.js", "/components/panel/x.js"),
    ],
)
def test_no_session_redirects_to_sign_in(
    admin_server: AdminServer, path: str, expected_next: str
) -> None:
    with admin_server.client() as client:
        response = client.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == f"/auth/login?next={expected_next}"


def test_a_forged_guest_cookie_changes_nothing(admin_server: AdminServer) -> None:
    with admin_server.client() as client:
        client.cookies.set("is_guest", "1")
        client.cookies.set("user", "admin@example.com")
        assert client.get("/admin").status_code == 303
    _, analyst = admin_server.cookie_for(admin=False)
    with admin_server.client(analyst) as client:
        client.cookies.set("is_guest", "1")
        assert client.get("/admin").status_code == 403


def test_an_analyst_gets_403_pointing_at_their_page(admin_server: AdminServer) -> None:
    _, cookie = admin_server.cookie_for(admin=False)
    with admin_server.client(cookie) as client:
        response = client.get("/admin")
        components = client.get("/components/panel/x.js")
    assert response.status_code == 403
    assert "admins only" in response.text.lower() and "/me" in response.text
    assert components.status_code == 403


def test_component_resources_import_nothing_the_url_names(admin_server: AdminServer) -> None:
    """Panel's /components route imported any module its URL named (with whatever
    importing it does) and answered 500 for an unknown one: the gate lets through only a
    class of Panel, Bokeh or the admin app already imported, and answers others 404."""
    import sys

    _, cookie = admin_server.cookie_for(admin=True)
    assert "this" not in sys.modules
    with admin_server.client(cookie) as client:
        for path in (
            "/components/this/x/y/z",
            "/components/panel/NoSuchClass/_css/x.css",
            "/components/panel.layout/Column/__init__/x",  # not an attribute Panel serves
            "/components/panel",
        ):
            answer = client.get(path)
            assert answer.status_code == 404, (path, answer.status_code)
        assert "this" not in sys.modules  # nothing was imported


def test_the_gates_copy_of_panels_resource_attributes_is_panels() -> None:
    from panel.io.server import ComponentResourceHandler

    from agnes_mcp.api.admin_gate import RESOURCE_ATTRS

    assert tuple(ComponentResourceHandler._resource_attrs) == RESOURCE_ATTRS


def test_a_signed_out_session_is_refused(admin_server: AdminServer) -> None:
    session_id, cookie = admin_server.cookie_for(admin=True)
    with admin_server.client(cookie) as client:
        assert client.get("/admin").status_code == 200
        admin_server.services.web_sessions.sign_out(session_id)
        assert client.get("/admin").status_code == 303


# --- websockets -------------------------------------------------------------------------


def ws_url(server: AdminServer, path: str = "/admin/ws") -> str:
    return server.url.replace("http://", "ws://") + path


def open_ws(server: AdminServer, token: str, cookie: str | None, origin: str) -> None:
    headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"} if cookie else {}
    with connect(
        ws_url(server),
        subprotocols=[Subprotocol("bokeh"), Subprotocol(token)],
        additional_headers=headers,
        origin=Origin(origin),
        open_timeout=30,
    ) as ws:
        ack = ws.recv(timeout=30)
        assert "ACK" in str(ack)


def test_websocket_needs_a_session_and_our_origin(admin_server: AdminServer) -> None:
    _, cookie = admin_server.cookie_for(admin=True)
    _, analyst = admin_server.cookie_for(admin=False)
    with admin_server.client(cookie) as client:
        token = TOKEN_IN_PAGE.findall(client.get("/admin").text)[0]
    same_origin = admin_server.url
    open_ws(admin_server, token, cookie, same_origin)  # the control: this one opens
    for who, origin in [
        (None, same_origin),
        (analyst, same_origin),
        (cookie, "http://evil.example.com"),
        (cookie, "null"),
    ]:
        with pytest.raises(InvalidStatus) as refused:
            open_ws(admin_server, token, who, origin)
        assert refused.value.response.status_code == 403, (who is None, origin)


def test_signing_out_closes_the_open_admin_websocket_at_once(admin_server: AdminServer) -> None:
    """The gate admitted a websocket once, when it opened: a signed-out admin's open tab
    kept its socket (the page noticed only at its next periodic check). Ending the
    session now closes the socket at once, with 1008."""
    session_id, cookie = admin_server.cookie_for(admin=True)
    with admin_server.client(cookie) as client:
        token = TOKEN_IN_PAGE.findall(client.get("/admin").text)[0]
    with connect(
        ws_url(admin_server),
        subprotocols=[Subprotocol("bokeh"), Subprotocol(token)],
        additional_headers={"Cookie": f"{SESSION_COOKIE}={cookie}"},
        origin=Origin(admin_server.url),
        open_timeout=30,
    ) as ws:
        header, metadata, content = (ws.recv(timeout=30) for _ in range(3))  # one message
        assert "ACK" in str(header) and metadata == content == "{}"
        admin_server.services.web_sessions.sign_out(session_id)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


# --- /static and the routes -------------------------------------------------------------


def test_static_is_panels_and_nothing_else_lives_there(admin_server: AdminServer) -> None:
    routes = admin_server.app.routes
    statics = [r for r in routes if getattr(r, "path", "").startswith("/static")]
    assert statics and all(isinstance(r, Mount) for r in statics)
    first = routes.index(statics[0])
    probe = {"type": "http", "path": "/static/js/bokeh.min.js", "method": "GET"}
    assert not [r for r in routes[:first] if r.matches(probe)[0] is not Match.NONE]
    with admin_server.client() as client:
        schema = client.get("/api/openapi.json").json()
        bokeh = client.get("/static/js/bokeh.min.js")
        panel = client.get("/static/extensions/panel/panel.min.js")
        docs = client.get("/api/docs")
    assert bokeh.status_code == 200 and "javascript" in bokeh.headers["content-type"]
    assert panel.status_code == 200
    assert docs.status_code == 200  # the API's own assets are not under /static
    assert not [p for p in schema["paths"] if p.startswith(("/admin", "/components", "/static"))]


def test_panel_gets_allow_lists_and_signed_sessions(admin_server: AdminServer) -> None:
    application = admin_server.app.state.admin_mount.application
    assert application.include_cookies == []
    assert application.include_headers == ["X-Agnes-Session-Ref", "X-Agnes-Client-Ip"]
    # Page callbacks (a sync, a store read) run on Panel's thread pool, off the event loop.
    import panel as pn

    assert pn.state._thread_pool is not None
    assert application.sign_sessions is True
    assert application.secret_key not in (None, b"", admin_server.services.web_sessions.key)


def test_mount_refuses_a_route_that_shadows_static() -> None:
    from agnes_admin.mount import check_routes

    def nothing(_: object) -> PlainTextResponse:
        return PlainTextResponse("")

    with pytest.raises(RuntimeError, match="shadows"):
        check_routes([Route("/static/{path:path}", nothing)], [])
    with pytest.raises(RuntimeError, match="shadows"):
        check_routes([Route("/admin", nothing)], [Route("/admin", nothing)])
    check_routes([Route("/api/x", nothing)], [Route("/admin", nothing)])


# --- readiness ----------------------------------------------------------------------------


def test_admin_paths_wait_for_the_mount_then_503(tmp_path: Path) -> None:
    services = Services.open(make_settings(tmp_path / "data"))
    readiness = AdminReadiness()
    readiness.pending()

    def page(_: object) -> PlainTextResponse:
        return PlainTextResponse("panel page")

    inner = Starlette(routes=[Route("/static/x", page)])
    gate = AdminGate(inner, services, readiness, wait_seconds=0.2)
    try:
        with ThreadedServer(gate) as server, httpx.Client(base_url=server.url) as client:
            slow = client.get("/static/x")
            assert slow.status_code == 503 and slow.headers["retry-after"] == "5"
            answers: list[httpx.Response] = []
            gate.wait_seconds = 60
            waiting = threading.Thread(target=lambda: answers.append(client.get("/static/x")))
            waiting.start()
            while not readiness._waiters:  # the request is parked on the signal
                threading.Event().wait(0.01)
            readiness.ready()
            waiting.join(timeout=30)
            assert answers and answers[0].status_code == 200
            assert answers[0].text == "panel page"
            readiness.failed("import failed: ImportError")
            assert client.get("/static/x").status_code == 503
    finally:
        services.close()


# --- the overview page, in plain Python ---------------------------------------------------


def test_overview_shows_failures_and_retry_is_audited(synced: Services, source_root: Path) -> None:
    import panel as pn

    from agnes_admin.context import PageContext
    from agnes_admin.pages.overview import build
    from agnes_mcp.admin_overview import overview

    (source_root / "people.csv").write_text("id,name\n1,Ann\n2,Bo\n")
    register(synced, id="people", source_type="files", source_table="people.csv")
    assert synced.sync.sync("people").status == "ok"
    (source_root / "people.csv").unlink()
    assert synced.sync.sync("people").status == "error"
    admin = add_user(synced, (ADMIN_GROUP_ID,))
    session, _ = synced.web_sessions.sign_in(admin.id, "token")
    ctx = PageContext(synced, session.id)

    data = overview(synced)
    assert data.tables_by_mode == {"local": 1}
    assert [f.table_id for f in data.failures] == ["people"]
    files = next(s for s in data.sources if s.name == "files")
    assert files.tables == 1 and files.storage_bytes > 0 and files.last_success_at

    page = build(ctx)
    rows = [obj for obj in page.objects if getattr(obj, "name", "") == "people"]
    assert rows, "no failure row for the failed table"
    button = next(o for o in rows[0].objects if isinstance(o, pn.widgets.Button))
    button.clicks += 1
    # how the retry went shows beside it, with no reload (the file is still gone)
    assert "Failed again: " in rows[0].objects[-1].object and not button.disabled
    (source_root / "people.csv").write_text("id,name\n1,Ann\n")
    button.clicks += 1
    assert "Synced: 1 rows; it no longer needs you." in rows[0].objects[-1].object
    synced.write_behind.flush()
    trail = [r for r in synced.audit_log.recent(limit=20) if r.action == "sync.trigger"]
    assert trail and trail[0].user_id == admin.id and trail[0].resource == "people"

    synced.web_sessions.sign_out(session.id)  # a signed-out admin cannot act
    button.disabled = False
    button.clicks += 1
    assert "signed out" in rows[0].objects[-1].object


def test_overview_counts_todays_queries(services: Services) -> None:
    from agnes_mcp.admin_overview import overview

    admin = add_user(services, (ADMIN_GROUP_ID,))
    principal = services.web_sessions.sign_in(admin.id, "token")[0].principal
    services.query.run(principal, "SELECT 42 AS answer")
    data = overview(services)
    assert data.queries_today == 1 and data.refused_today == 0


def test_shell_frames_every_page_with_menu_and_sign_out(services: Services) -> None:
    from agnes_admin.context import PageContext
    from agnes_admin.pages import all_pages
    from agnes_admin.shell import TITLE_CLASS, shell

    admin = add_user(services, (ADMIN_GROUP_ID,))
    session, _ = services.web_sessions.sign_in(admin.id, "token")
    ctx = PageContext(services, session.id)
    pages = all_pages()
    overview = next(p for p in pages if p.slug == "")
    frame = shell(overview, ctx, pages)
    header, _, row = frame.objects
    nav, main = row.objects
    assert admin.email in header.object and "href='/me'" in header.object
    assert "action='/auth/logout'" in header.object
    assert f"name='csrf' value='{session.csrf}'" in header.object
    for page in pages:
        assert f"href='{page.path}'" in nav.object
    assert "aria-current='page'>Overview<" in nav.object
    assert f"class='{TITLE_CLASS}'>Overview<" in main.objects[0].object

    def broken(_: PageContext) -> object:
        raise ValueError("a bug")

    from agnes_admin.pages import Page

    failing = shell(Page("broken", "Broken", 99, broken), ctx, pages)
    assert "failed to load" in str(failing.objects[2].objects[1].objects[1].object)


def test_no_text_field_of_any_page_is_cut_in_the_browser(synced: Services) -> None:
    """Panel tells the browser ``maxlength=5000`` by default: a longer paste (a table's
    SQL, the agent rails) was cut there and saved cut. Only the server's limits apply."""
    import panel as pn

    from agnes_admin.context import PageContext
    from agnes_admin.forms import ModelForm
    from agnes_admin.pages import all_pages
    from agnes_mcp.server_config_admin import INSTRUCTIONS_MAX_CHARS
    from agnes_sync.table_spec import TableSpec

    admin = add_user(synced, (ADMIN_GROUP_ID,))
    ctx = PageContext(synced, synced.web_sessions.sign_in(admin.id, "token")[0].id)
    views = [page.build(ctx) for page in all_pages()]
    views.append(ModelForm(TableSpec, multiline=("source_query",)).view)
    fields = [w for view in views for w in view.select(pn.widgets.TextInput)]
    fields += [w for view in views for w in view.select(pn.widgets.TextAreaInput)]
    assert len(fields) > 20
    assert [w.name for w in fields if w.max_length <= INSTRUCTIONS_MAX_CHARS] == []


def test_a_long_sync_error_under_needs_you_says_it_is_cut(services: Services) -> None:
    from agnes_admin.context import PageContext
    from agnes_admin.pages.overview import ERROR_SHOWN, failure_row
    from agnes_mcp.admin_overview import SyncFailure

    admin = add_user(services, (ADMIN_GROUP_ID,))
    ctx = PageContext(services, services.web_sessions.sign_in(admin.id, "token")[0].id)
    error = "boom " * 200
    text, _, _ = failure_row(
        ctx, SyncFailure(table_id="t", source="s", error=error, failed_at=None)
    )
    assert f"cut at {ERROR_SHOWN} of {len(error)} characters" in text.object
    assert "Sync history" in text.object


def test_a_thousand_failures_open_the_overview_with_the_latest_and_a_count(
    services: Services,
) -> None:
    """A source down with 1,000 tables made a row and a Retry button for each under
    "Needs you": the page took ~20 s to open. The latest ones show, the rest are counted
    and where to see them is said."""
    import panel as pn

    from agnes_admin.context import PageContext
    from agnes_admin.pages.overview import FAILURES_SHOWN, build

    with services.store.transaction() as cur:
        cur.execute(
            "INSERT INTO table_registry (id, name, source_type) "
            "SELECT printf('t%04d', range), printf('t%04d', range), 'files' FROM range(1000)"
        )
        cur.execute(  # t0999 failed last
            "INSERT INTO sync_state (table_id, status, last_started_at, last_error) "
            "SELECT printf('t%04d', range), 'error', "
            "TIMESTAMPTZ '2026-12-01 00:00:00+00' + to_seconds(range), 'down' FROM range(1000)"
        )
    admin = add_user(services, (ADMIN_GROUP_ID,))
    ctx = PageContext(services, services.web_sessions.sign_in(admin.id, "token")[0].id)
    page = build(ctx)
    rows = [o for o in page.objects if isinstance(o, pn.Row)]
    assert [r.name for r in rows] == [f"t{n:04d}" for n in range(999, 999 - FAILURES_SHOWN, -1)]
    [more] = [o for o in page.objects if getattr(o, "name", "") == "more-failures"]
    assert f"The latest {FAILURES_SHOWN} of 1,000 failing tables" in more.object
    assert "/admin/tables" in more.object


def test_the_overview_writes_table_counts_with_digit_groups() -> None:
    """ "1008 (local: 1006, ...)" beside "Queries today 1,234": counts read alike."""
    from datetime import UTC, datetime

    from agnes_admin.pages.overview import summary
    from agnes_mcp.admin_overview import Overview

    data = Overview(
        version="1",
        data_dir="/d",
        tables_by_mode={"local": 1006, "remote": 2},
        sources=[],
        failures=[],
        problems=[],
        queries_today=1234,
        refused_today=0,
        bytes_scanned_today=0,
        today=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert "1,008 (local: 1,006, remote: 2)" in summary(data).object


def test_a_double_click_on_retry_retries_once(synced: Services, source_root: Path) -> None:
    """The second click of a double click on Retry (before the button showed disabled)
    queued a second sync and audited it twice; it is dropped until the retry's outcome
    shows."""
    import time

    import panel as pn
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    from agnes_admin.context import PageContext
    from agnes_admin.pages.overview import build

    (source_root / "people.csv").write_text("id,name\n1,Ann\n")
    register(synced, id="people", source_type="files", source_table="people.csv")
    (source_root / "people.csv").unlink()
    assert synced.sync.sync("people").status == "error"  # the file is gone
    admin = add_user(synced, (ADMIN_GROUP_ID,))
    ctx = PageContext(synced, synced.web_sessions.sign_in(admin.id, "token")[0].id)
    page = build(ctx)
    row = next(obj for obj in page.objects if getattr(obj, "name", "") == "people")
    button = next(o for o in row.objects if isinstance(o, pn.widgets.Button))
    doc = Document()
    with set_curdoc(doc):
        button.clicks += 1
        button.disabled = False  # as the browser may still show it, for a moment
        button.clicks += 1
    deadline = time.monotonic() + 30
    while not doc.session_callbacks and time.monotonic() < deadline:
        time.sleep(0.02)
    for callback in list(doc.session_callbacks):
        doc.remove_next_tick_callback(callback)  # type: ignore[arg-type]
        callback.callback()
    assert "Failed again: " in row.objects[-1].object
    synced.write_behind.flush()
    assert len([r for r in synced.audit_log.recent(limit=20) if r.action == "sync.trigger"]) == 1


def test_an_idle_session_closes_the_open_admin_websocket_when_it_ends(tmp_path: Path) -> None:
    """An idle limit (or a token's expiry) ends a session without any change to the
    store, and nothing woke the open socket: it stayed open until the browser sent
    something, while the page's own periodic check counted as use and kept the session
    from ever idling out. The socket now closes (1008) when the session ends."""
    idle_seconds = 6.0
    settings = make_settings(
        tmp_path / "data",
        write_behind_seconds=0.05,
        auth={"session_idle_hours": idle_seconds / 3600},
    )
    services = Services.open(settings)
    try:
        app = create_app(services)
        with ThreadedServer(app) as server:
            live = AdminServer(server.url, app, services)
            session_id, cookie = live.cookie_for(admin=True)
            with live.client(cookie) as client:
                token = TOKEN_IN_PAGE.findall(client.get("/admin").text)[0]
            services.web_sessions.check(session_id)  # used now (building the page is slow)
            with connect(
                ws_url(live),
                subprotocols=[Subprotocol("bokeh"), Subprotocol(token)],
                additional_headers={"Cookie": f"{SESSION_COOKIE}={cookie}"},
                origin=Origin(live.url),
                open_timeout=30,
            ) as ws:
                assert "ACK" in str(ws.recv(timeout=30))
                opened = time.monotonic()
                with pytest.raises(ConnectionClosed) as closed:
                    while True:  # the rest of the ACK, then nothing until the close
                        ws.recv(timeout=4 * idle_seconds)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
            assert time.monotonic() - opened < 2 * idle_seconds
    finally:
        services.close()
