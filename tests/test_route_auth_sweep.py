"""Every route the running server answers, found from the app itself (the REST API, the
routes kept out of the OpenAPI document, the mounted MCP app, the OAuth endpoints, the
marketplace's git and ZIP routes, the web pages and the admin app's pages and websockets
once mounted), probed as an outsider would: no credentials, a malformed token, a revoked
one, an expired one, an OAuth access token where only personal tokens go, an analyst's
token on admin routes, a signed-out or made-up session cookie, a form without its CSRF
value, a websocket from another Host or Origin; and every route, MCP tool and resource
naming a table, and the marketplace, asked by one group about another group's table or
plugin.

A route is public only when :data:`PUBLIC` names it with the reason; a web page only when
:data:`SESSION` does (or it is an admin path); every other route must refuse a caller
without a valid personal access token. So a route added without an auth check fails here
until someone decides, visibly, that it is public."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.cookiejar import Cookie, CookieJar
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from starlette.routing import Mount
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin, Subprotocol

from agnes_mcp.api.admin_gate import AdminReadiness, ReadyState, is_gated_path
from agnes_mcp.api.dependencies import get_admin
from agnes_mcp.auth.sessions import SESSION_COOKIE
from agnes_mcp.auth.tokens import TokenService
from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
from agnes_mcp.resource_types import ResourceType
from tests.conftest import LiveServer, add_user, register, running_server, token_for
from tests.mcp_raw import INITIALIZE, MCP_HEADERS
from tests.test_admin_embedding import TOKEN_IN_PAGE
from tests.test_api_marketplaces import seed_plugins
from tests.test_oauth_admin import start_grant

# path -> why anyone may call it (each must exist: a stale entry fails the sweep)
PUBLIC = {
    "/healthz": "a load balancer's probe",
    "/favicon.ico": "a browser's icon request (204)",
    "/api/openapi.json": "the API's description",
    "/api/docs": "the API's browsable description",
    "/api/docs/static": "its scripts and styles",
    "/.well-known/oauth-protected-resource": "RFC 9728 discovery",
    "/.well-known/oauth-protected-resource/mcp": "RFC 9728 discovery",
    "/.well-known/oauth-authorization-server": "RFC 8414 discovery",
    "/.well-known/oauth-authorization-server/mcp": "RFC 8414 discovery",
    "/authorize": "OAuth: sends a person to sign in, then to consent",
    "/token": "OAuth: the client authenticates with its code, verifier or refresh token",
    "/register": "OAuth: RFC 7591 dynamic client registration",
    "/revoke": "OAuth: RFC 7009, the token being revoked is the credential",
    "/auth/login": "the sign-in page",
    "/auth/token": "signing in with a token (the form carries it, with a CSRF value)",
    "/auth/oidc/start": "signing in with the company's identity provider",
    "/auth/oidc/callback": "its answer (state and nonce checked)",
    "/webhooks/{connector}/{source}": "deliveries authenticated by their HMAC signature",
    "/static": "Bokeh's and Panel's JavaScript",
    "/static/extensions/panel": "Panel's JavaScript",
}
# web pages: a signed-in session cookie, never a bearer token
SESSION = {
    "/me",
    "/me/tokens",
    "/me/tokens/{token_id}/revoke",
    "/me/oauth/{grant_id}/revoke",
    "/auth/logout",
    "/auth/refresh-groups",
    "/oauth/consent",
}
# answer 404 (or 403 for a push) to everyone, admins included: nothing is served there
SERVES_NOTHING = {"/marketplace.git", "/marketplace.git/{rest:path}"}
# what a probe must add for the route to get as far as its auth check
PROBE_QUERY = {"/marketplace.git/info/refs": "service=git-upload-pack"}
SECRET_TABLE = "salaries"  # granted to Finance only
GHOST_TABLE = "salarieq"  # no such table: what Sales is told of SECRET_TABLE must read the same
SKIPPED_METHODS = {"HEAD", "OPTIONS"}  # HEAD is GET's (test_api_http); OPTIONS is CORS


class NoCookies(CookieJar):
    """A jar that keeps nothing: a cookie one answer sets never rides along on a later probe."""

    def set_cookie(self, cookie: Cookie) -> None:
        return


NO_COOKIES = NoCookies()


@dataclass(frozen=True)
class Probe:
    method: str
    path: str  # as the app declares it
    url: str  # its parameters filled in

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Swept:
    live: LiveServer
    admin: str  # an Admin member's token with the admin scope
    analyst: str
    analyst_session: str  # cookies
    admin_session: str
    signed_out_session: str  # an admin's, signed out
    http: httpx.Client  # one for every probe (keeps no cookies: each probe sends its own)
    finance: str  # a token of a member of Finance, the one group granted SECRET_TABLE


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swept]:
    root: Path = tmp_path_factory.mktemp("sweep")
    (root / "files").mkdir()
    (root / "files" / "salaries.csv").write_text("name,salary\nada,100\nbob,90\n")
    sources = {"files": {"connector": "files", "options": {"path": str(root / "files")}}}
    with running_server(root / "data", sources=sources, scheduler_enabled=False) as live:
        readiness: AdminReadiness = live.app.state.admin_readiness
        assert readiness.wait_settled(120) is ReadyState.READY, readiness.reason  # its routes
        services = live.services
        analyst = add_user(services)
        boss = add_user(services, (ADMIN_GROUP_ID,))
        _, analyst_cookie = services.web_sessions.sign_in(analyst.id, "token")
        _, admin_cookie = services.web_sessions.sign_in(boss.id, "token")
        ended, ended_cookie = services.web_sessions.sign_in(boss.id, "token")
        services.web_sessions.sign_out(ended.id)
        register(services, id=SECRET_TABLE, source_type="files", source_table="salaries.csv")
        assert services.sync.sync(SECRET_TABLE).status == "ok"
        finance = services.groups.add("Finance")
        services.grants.add(finance.id, ResourceType.TABLE, SECRET_TABLE, granted_by="test")
        sales = services.groups.add("Sales")  # the analyst's: granted nothing
        services.groups.add_member(sales.id, analyst.id)
        accountant = add_user(services, (finance.id,))
        with httpx.Client(
            base_url=live.base_url, timeout=120, cookies=NO_COOKIES, follow_redirects=False
        ) as http:
            yield Swept(
                live,
                token_for(services, boss, admin=True),
                token_for(services, analyst),
                analyst_cookie,
                admin_cookie,
                ended_cookie,
                http,
                token_for(services, accountant),
            )


def fill(path: str) -> str:
    url = re.sub(r"\{[^}]+\}", "x", path)
    query = PROBE_QUERY.get(path)
    return f"{url}?{query}" if query else url


def routes(swept: Swept) -> list[object]:
    return [context.original_route for context in iter_route_contexts(swept.live.app.routes)]


def probes(swept: Swept, kind: str) -> list[Probe]:
    """Every (method, path) of one kind: 'public', 'session', 'nothing' or 'bearer'."""
    found = []
    for route in routes(swept):
        if isinstance(route, APIWebSocketRoute):
            continue
        path: str = getattr(route, "path", "")
        if isinstance(route, Mount):
            methods = {"POST"} if path == "/mcp" else {"GET"}
            target = path + "/" if path == "/mcp" else path + "/x"
        else:
            methods = set(getattr(route, "methods", None) or ()) - SKIPPED_METHODS
            target = fill(path)
        if kind_of(path) == kind:
            found += [Probe(m, path, target) for m in sorted(methods)]
    return found


def kind_of(path: str) -> str:
    if path in PUBLIC:
        return "public"
    if path in SESSION or is_gated_path(path.replace("{path:path}", "x")):
        return "session"
    if path in SERVES_NOTHING:
        return "nothing"
    return "bearer"


def send(
    swept: Swept,
    probe: Probe,
    *,
    token: str | None = None,
    header: str | None = None,
    cookie: str | None = None,
) -> httpx.Response:
    headers = {"Authorization": header or f"Bearer {token}"} if header or token else {}
    if probe.path == "/mcp":
        headers.update(MCP_HEADERS)
    if cookie:
        headers["Cookie"] = f"{SESSION_COOKIE}={cookie}"
    body = INITIALIZE if probe.path == "/mcp" else {}
    return swept.http.request(
        probe.method,
        probe.url,
        headers=headers,
        json=body if probe.method in ("POST", "PUT", "PATCH", "DELETE") else None,
    )


def bad_credentials(swept: Swept) -> dict[str, str]:
    """Authorization headers no bearer route may take."""
    services = swept.live.services
    user = add_user(services)
    _, revoked = services.tokens.create(user.id, "revoked")
    services.tokens.revoke(services.tokens.authenticate(revoked, record_use=False).token_id or "")
    yesterday = datetime.now(UTC) - timedelta(days=1)
    earlier = TokenService(
        services.store,
        services.token_store,
        services.users,
        services.groups,
        services.write_behind,
        lambda: yesterday,
    )
    _, expired = earlier.create(user.id, "expired", expires_in=timedelta(hours=1))
    oauth = start_grant(services, user).access_token  # bound to /mcp
    deactivated_user = add_user(services)
    deactivated = token_for(services, deactivated_user)
    services.users.set_active(deactivated_user.id, False)
    return {
        "malformed": "Bearer not-a-token",
        "well-formed, unknown": "Bearer agnes_abcdefghij_" + "x" * 43,
        "not bearer": "Digest username=x",
        "revoked": f"Bearer {revoked}",
        "expired": f"Bearer {expired}",
        "deactivated user": f"Bearer {deactivated}",
        "OAuth access token": f"Bearer {oauth}",
    }


def test_the_sweep_sees_every_kind_of_route(swept: Swept) -> None:
    """The enumeration reaches the admin app's pages and websockets (mounted in the
    background), the OAuth endpoints, the MCP mount and the git routes; and the lists of
    exceptions name only routes that exist."""
    paths = {getattr(r, "path", "") for r in routes(swept)}
    assert {"/admin", "/admin/ws", "/admin/tokens/ws", "/authorize", "/mcp"} <= paths
    assert {"/marketplace.git/info/refs", "/me", "/components/{path:path}"} <= paths
    assert not (set(PUBLIC) | SESSION | SERVES_NOTHING) - paths, "a stale entry"
    assert len(probes(swept, "bearer")) > 60


def test_every_bearer_route_refuses_callers_without_a_valid_personal_token(
    swept: Swept,
) -> None:
    """No token, a malformed, unknown, revoked or expired one, a deactivated user's, or an
    OAuth access token off /mcp: 401, in the API's error shape, with a challenge."""
    credentials = bad_credentials(swept)
    oauth = credentials.pop("OAuth access token")
    wrong = []
    for probe in probes(swept, "bearer"):
        tries = {"none": send(swept, probe)}
        tries |= {name: send(swept, probe, header=h) for name, h in credentials.items()}
        if probe.path != "/mcp":  # the one place an OAuth access token is taken
            tries["OAuth access token"] = send(swept, probe, header=oauth)
        for name, answer in tries.items():
            challenged = answer.headers.get("www-authenticate", "")
            if answer.status_code != 401 or "Bearer" not in challenged:
                wrong.append(f"{probe} with {name}: {answer.status_code}")
            elif "Traceback" in answer.text or "error" not in answer.json():
                wrong.append(f"{probe} with {name}: {answer.text[:80]}")
    assert not wrong, "\n".join(wrong)


def admin_deps(route: APIRoute) -> set[object]:
    """Every callable among the route's dependencies, at any depth."""

    def calls(dependant: object) -> Iterator[object]:
        yield getattr(dependant, "call", None)
        for sub in getattr(dependant, "dependencies", ()):
            yield from calls(sub)

    return set(calls(route.dependant))


def admin_routes(swept: Swept) -> list[APIRoute]:
    """The routes that take the admin dependency (every one under /api/admin/ must)."""
    found = []
    for route in routes(swept):
        if not isinstance(route, APIRoute):
            continue
        admin = get_admin in admin_deps(route)
        assert admin or not route.path.startswith("/api/admin/"), f"{route.path}: no AdminDep"
        if admin:
            found.append(route)
    return found


def test_every_admin_route_refuses_an_analyst_and_a_data_only_admin_token(
    swept: Swept,
) -> None:
    services = swept.live.services
    boss = add_user(services, (ADMIN_GROUP_ID,))
    data_only = token_for(services, boss)  # an Admin member's token without the scope
    found = admin_routes(swept)
    assert len(found) > 30
    wrong = []
    for route in found:
        for method in sorted(route.methods - SKIPPED_METHODS):
            probe = Probe(method, route.path, fill(route.path))
            for name, token in (("analyst", swept.analyst), ("data-only", data_only)):
                answer = send(swept, probe, token=token)
                if answer.status_code != 403 or answer.json()["error"]["code"] != "admin_required":
                    wrong.append(f"{probe} with {name}: {answer.status_code}")
    # admins only by the service's own check (a valid body gets that far)
    hybrid = {"sql": "SELECT * FROM r", "register_remote": {"r": "SELECT 1"}}
    answer = swept.http.post(
        "/api/query/hybrid", json=hybrid, headers={"Authorization": f"Bearer {swept.analyst}"}
    )
    if answer.status_code != 403 or answer.json()["error"]["code"] != "admin_required":
        wrong.append(f"POST /api/query/hybrid with analyst: {answer.status_code}")
    assert not wrong, "\n".join(wrong)


def test_every_web_page_needs_a_live_session_and_admin_pages_an_admin(swept: Swept) -> None:
    """No cookie, a made-up one, a signed-out session's or a bearer token instead: sent to
    sign in (303 to /auth/login) or refused (401, 403), never served; an analyst's
    session on the admin app: 403; a form posted in a live session without its CSRF
    value: 403."""
    wrong = []
    found = probes(swept, "session")
    assert len(found) > 15
    for probe in found:
        answers = {
            "none": send(swept, probe),
            "made up": send(swept, probe, cookie="s_made-up.value"),
            "signed out": send(swept, probe, cookie=swept.signed_out_session),
            "bearer token": send(swept, probe, token=swept.admin),
        }
        if is_gated_path(probe.url):
            answers["analyst"] = send(swept, probe, cookie=swept.analyst_session)
        elif probe.method == "POST":  # a live session, a forged form: no CSRF value
            answers["no CSRF value"] = send(swept, probe, cookie=swept.analyst_session)
        for name, answer in answers.items():
            login = answer.headers.get("location", "").startswith("/auth/login")
            refused = answer.status_code in (401, 403) or (answer.status_code == 303 and login)
            if name in ("analyst", "no CSRF value"):
                refused = answer.status_code == 403
            if not refused:
                wrong.append(f"{probe} with {name}: {answer.status_code}")
    assert not wrong, "\n".join(wrong)


def test_paths_that_serve_nothing_serve_it_to_admins_too(swept: Swept) -> None:
    for probe in probes(swept, "nothing"):
        for answer in (send(swept, probe), send(swept, probe, token=swept.admin)):
            assert answer.status_code in (403, 404), (str(probe), answer.status_code)


def websocket(
    swept: Swept, path: str, token: str, cookie: str | None, origin: str, host: str
) -> None:
    """Open the page's websocket with its Bokeh session ``token`` (over a connection to the
    server, asking for ``host``) and wait for Bokeh's ACK."""
    headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"} if cookie else {}
    address = httpx.URL(swept.live.base_url)
    with connect(
        f"ws://{host}{path}",
        sock=socket.create_connection((address.host, address.port or 80), timeout=60),
        subprotocols=[Subprotocol("bokeh"), Subprotocol(token)],
        additional_headers=headers,
        origin=Origin(origin),
        open_timeout=60,
    ) as ws:
        assert "ACK" in str(ws.recv(timeout=60))


def page_token(swept: Swept, page: str) -> str:
    """The Bokeh session token the admin's copy of ``page`` carries."""
    cookies = {SESSION_COOKIE: swept.admin_session}
    with httpx.Client(base_url=swept.live.base_url, timeout=120, cookies=cookies) as client:
        served = client.get(page)
    assert served.status_code == 200, (page, served.status_code)
    return TOKEN_IN_PAGE.findall(served.text)[0]


def test_every_websocket_needs_an_admin_session_our_host_and_our_origin(swept: Swept) -> None:
    """Each page's websocket, with a valid Bokeh token of that page: refused at the
    handshake without a session, with a signed-out or an analyst's one, from another
    Origin or sent to another Host. The same token from an admin's session and our origin
    opens (the control), so each refusal is the gates', not Bokeh's."""
    sockets = [r.path for r in routes(swept) if isinstance(r, APIWebSocketRoute)]
    assert "/admin/ws" in sockets and len(sockets) > 5
    ours = swept.live.base_url
    host = ours.removeprefix("http://")
    wrong = []
    for path in sockets:
        token = page_token(swept, path.removesuffix("/ws"))
        websocket(swept, path, token, swept.admin_session, ours, host)  # the control
        for name, cookie, origin, to in [
            ("no session", None, ours, host),
            ("signed out", swept.signed_out_session, ours, host),
            ("analyst", swept.analyst_session, ours, host),
            ("another origin", swept.admin_session, "http://evil.example.com", host),
            ("another host", swept.admin_session, ours, "evil.example.com:80"),
        ]:
            try:
                websocket(swept, path, token, cookie, origin, to)
            except InvalidStatus as exc:
                if exc.response.status_code in (400, 403):
                    continue
            wrong.append(f"{path} with {name}")
    assert not wrong, "\n".join(wrong)


def test_a_table_of_another_group_is_refused_on_every_route_that_names_one(
    swept: Swept,
) -> None:
    """Every route taking a table id in its path, and every one taking SQL or a table in
    its body, asked by a member of Sales about Finance's table: refused, with nothing of
    it in the answer. A member of Finance gets past the grant on each (so each route
    really reaches the table); only Finance sees it in the catalog and the manifest."""
    named = [
        r
        for r in routes(swept)
        if isinstance(r, APIRoute) and "{table_id" in r.path and get_admin not in admin_deps(r)
    ]
    assert len(named) >= 3
    bodies = {
        "/api/query": {"sql": f"SELECT * FROM {SECRET_TABLE}"},
        "/api/query/estimate": {"sql": f"SELECT * FROM {SECRET_TABLE}"},
        "/api/snapshots/estimate": {"table_id": SECRET_TABLE, "select": ["name", "salary"]},
        "/api/snapshots": {"table_id": SECRET_TABLE, "select": ["name", "salary"]},
        "/api/snapshots/stored": {
            "table_id": SECRET_TABLE,
            "select": ["name", "salary"],
            "name": "mine",
        },
    }
    wrong = []
    asks = [
        (m, re.sub(r"\{table_id[^}]*\}", SECRET_TABLE, r.path), None)
        for r in named
        for m in r.methods - SKIPPED_METHODS
    ]
    asks += [("POST", path, body) for path, body in bodies.items()]
    for method, url, body in asks:
        for who, token in (("sales", swept.analyst), ("finance", swept.finance)):
            headers = {"Authorization": f"Bearer {token}"}
            answer = swept.http.request(method, url, json=body, headers=headers)
            if who == "finance":  # past the grant (a local table takes no snapshot: 400)
                if answer.status_code in (401, 403, 404):
                    wrong.append(f"{method} {url} for Finance: {answer.status_code}")
                continue
            # The catalog does not list it for Sales: no answer may tell that it exists.
            ghost = swept.http.request(
                method,
                url.replace(SECRET_TABLE, GHOST_TABLE),
                json=json.loads(json.dumps(body).replace(SECRET_TABLE, GHOST_TABLE)),
                headers=headers,
            )
            leaked = "ada" in answer.text or "salary" in answer.text
            told = (answer.status_code, answer.text.replace(SECRET_TABLE, "<t>"))
            if (
                answer.status_code < 400
                or leaked
                or told
                != (
                    ghost.status_code,
                    ghost.text.replace(GHOST_TABLE, "<t>"),
                )
            ):
                wrong.append(f"{method} {url} for Sales: {answer.status_code} {answer.text[:80]}")
    assert not wrong, "\n".join(wrong)
    for token, seen in ((swept.analyst, False), (swept.finance, True)):
        headers = {"Authorization": f"Bearer {token}"}
        catalog = swept.http.get("/api/catalog", headers=headers).json()
        manifest = swept.http.get("/api/sync/manifest", headers=headers).text
        listed = SECRET_TABLE in {t["id"] for t in catalog["tables"]}
        assert (listed, SECRET_TABLE in manifest) == (seen, seen)


def mcp_session(swept: Swept, token: str) -> dict[str, str]:
    """Headers of an initialized MCP session of ``token``'s user."""
    headers = {"Authorization": f"Bearer {token}", **MCP_HEADERS}
    opened = swept.http.post("/mcp", json=INITIALIZE, headers=headers)
    assert opened.status_code == 200, opened.text
    headers["mcp-session-id"] = opened.headers["mcp-session-id"]
    notified = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert swept.http.post("/mcp", json=notified, headers=headers).status_code == 202
    return headers


def test_every_mcp_tool_and_resource_naming_a_table_refuses_another_groups(
    swept: Swept,
) -> None:
    """Each tool the server lists that takes a table or SQL, and the table resource, asked
    by a member of Sales about Finance's table: refused as a table that does not exist
    (the catalog does not list it for Sales), nothing of the table in the answer; the same
    call from Finance gets past the grant."""
    answers: dict[str, dict[str, str]] = {}
    for who, token, table in (
        ("sales", swept.analyst, SECRET_TABLE),
        ("ghost", swept.analyst, GHOST_TABLE),
        ("finance", swept.finance, SECRET_TABLE),
    ):
        headers = mcp_session(swept, token)
        listed = swept.http.post(
            "/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers=headers
        ).json()["result"]["tools"]
        calls: dict[str, dict[str, object]] = {}
        for tool in listed:
            wanted = set(tool["inputSchema"].get("properties", {}))
            arguments: dict[str, object] = {}
            if "table" in wanted:
                arguments["table"] = table
            if "sql" in wanted:
                arguments["sql"] = f"SELECT name, salary FROM {table}"
            if "select" in wanted:
                arguments["select"] = ["name", "salary"]
            if "name" in wanted and "table" in wanted:
                arguments["name"] = "mine"
            if arguments:
                calls[tool["name"]] = arguments
        said = {}
        for number, (name, arguments) in enumerate(sorted(calls.items()), start=3):
            request = {
                "jsonrpc": "2.0",
                "id": number,
                "method": "tools/call",
                "params": {"name": name, "arguments": arguments},
            }
            said[name] = swept.http.post("/mcp", json=request, headers=headers).text
        uri = f"agnes://tables/{table}/schema"
        read = {"jsonrpc": "2.0", "id": 99, "method": "resources/read", "params": {"uri": uri}}
        said["resource"] = swept.http.post("/mcp", json=read, headers=headers).text
        answers[who] = said
    assert {"query", "schema", "describe"} <= set(answers["sales"]), sorted(answers["sales"])
    wrong = []
    for name, text in answers["sales"].items():
        # as for a table that does not exist: the catalog does not list it for Sales
        ghost = answers["ghost"][name].replace(GHOST_TABLE, "<t>")
        if text.replace(SECRET_TABLE, "<t>") != ghost or "ada" in text or "bob" in text:
            wrong.append(f"{name} for Sales: {text[:120]}")
    for name, text in answers["finance"].items():
        if "table_not_found" in text or "salaries' is not" in text:
            wrong.append(f"{name} for Finance: {text[:120]}")
    assert not wrong, "\n".join(wrong)


def test_a_plugin_of_another_group_is_not_offered(swept: Swept) -> None:
    """The marketplace a member of Sales is served lists no plugin granted to Finance
    only; a member of Finance is served it."""
    services = swept.live.services
    services.marketplaces.add("fin", "https://git.example.com/fin.git", added_by="t", sync=False)
    seed_plugins(services, "fin", "payroll")
    finance = services.groups.by_name("Finance")
    assert finance is not None
    services.grants.add(finance.id, ResourceType.MARKETPLACE_PLUGIN, "fin/payroll")
    offered = {}
    for who, token in (("sales", swept.analyst), ("finance", swept.finance)):
        info = swept.http.get("/api/marketplace/info", headers={"Authorization": f"Bearer {token}"})
        assert info.status_code == 200, info.text
        offered[who] = {p["grant_id"] for p in info.json()["plugins"]}
    assert offered == {"sales": set(), "finance": {"fin/payroll"}}
