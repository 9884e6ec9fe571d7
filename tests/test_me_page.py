"""/me over real HTTP: who I am, my groups, what I may use, my tokens, CSRF and escaping."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from agnes_mcp.auth.sessions import SESSION_COOKIE
from agnes_mcp.me import view as me_view
from agnes_mcp.me.page import me_page
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.store.group_sync import WantedGroup
from agnes_mcp.store.groups import MembershipSource
from agnes_mcp.store.ids import utcnow
from agnes_mcp.store.users import User
from tests.conftest import LiveServer, add_user, register, running_server, token_for, unique_email

RAW_TOKEN = re.compile(r"agnes_[a-z0-9]{10}_[A-Za-z0-9_-]{43}")
CSRF_FIELD = re.compile(r"name='csrf' value='([^']+)'")

METRICS = """\
metrics:
  - name: open_count
    display_name: Open rows
    category: me
    description: rows of the granted table
    type: count
    table: me_open
    expression: count(*)
  - name: hidden_count
    display_name: Hidden rows
    category: me
    description: rows of the table nobody here may read
    type: count
    table: me_hidden
    expression: count(*)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root: Path = tmp_path_factory.mktemp("me")
    with running_server(
        root / "data", sources={"sample": {"connector": "sample"}}, scheduler_enabled=False
    ) as live:
        services = live.services
        for table_id, rows in (("me_open", 1234), ("me_hidden", 5)):
            register(services, id=table_id, source_type="sample", source_options={"rows": rows})
        assert all(r.status == "ok" for r in services.sync.sync_many(["me_open", "me_hidden"]))
        admin = services.tokens.authenticate(live.admin_token, record_use=False)
        services.metric_service.import_texts(admin, {"me.yml": METRICS}, replace=False)
        readers = services.groups.add("Readers")
        services.grants.add(readers.id, ResourceType.TABLE, "me_open")
        services.grants.add(readers.id, ResourceType.METRIC, "me/open_count")
        services.grants.add(readers.id, ResourceType.METRIC, "me/hidden_count")
        yield live


def reader(server: LiveServer, name: str = "Test User") -> User:
    services = server.services
    user = services.users.add(unique_email("reader"), name)
    readers = services.groups.by_name("Readers")
    assert readers is not None
    services.groups.add_member(readers.id, user.id, MembershipSource.ADMIN)
    return user


def browser(server: LiveServer, user: User | None = None) -> httpx.Client:
    """A client holding a session cookie for ``user`` (none: signed out)."""
    cookies = {}
    if user is not None:
        _, cookie = server.services.web_sessions.sign_in(user.id, "token")
        cookies[SESSION_COOKIE] = cookie
    return server.client(cookies=cookies, follow_redirects=False)


def csrf_of(page: httpx.Response) -> str:
    found = CSRF_FIELD.search(page.text)
    assert found, page.text
    return found[1]


def token_rows(server: LiveServer, user: User) -> list[tuple[str, str | None]]:
    return [
        (t.id, None if t.revoked_at is None else "revoked")
        for t in server.services.token_store.all(user_id=user.id)
    ]


def test_signed_out_goes_to_login(server: LiveServer) -> None:
    with browser(server) as client:
        page = client.get("/me")
        assert page.status_code == 303
        assert page.headers["location"] == "/auth/login?next=/me"
        posted = client.post("/me/tokens", data={"name": "x", "csrf": "x"})
        assert posted.status_code == 303
        assert posted.headers["location"] == "/auth/login?next=/me"
        revoke = client.post("/me/tokens/tok_x/revoke", data={"csrf": "x"})
        assert revoke.status_code == 303
        assert revoke.headers["location"] == "/auth/login?next=/me"
    with server.client(cookies={SESSION_COOKIE: "forged.value"}, follow_redirects=False) as c:
        assert c.get("/me").status_code == 303


def test_signed_out_or_deactivated_session_ends_the_page(server: LiveServer) -> None:
    user = reader(server)
    with browser(server, user) as client:
        assert client.get("/me").status_code == 200
        server.services.users.set_active(user.id, False)
        try:
            assert client.get("/me").status_code == 303
        finally:
            server.services.users.set_active(user.id, True)


def test_who_i_am_groups_and_sources(server: LiveServer) -> None:
    user = reader(server, "Ada Reader")
    synced = server.services.groups.add("Synced team")
    server.services.groups.add_member(synced.id, user.id, MembershipSource.GOOGLE_SYNC)
    with browser(server, user) as client:
        page = client.get("/me")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    text = page.text
    assert user.email in text and "Ada Reader" in text
    assert "a personal access token" in text  # how I signed in
    assert "<th>Admin</th><td>no</td>" in text and "href='/admin'" not in text
    rows = dict(re.findall(r"<tr><td>([^<]+)</td><td>[^<]*</td><td><code>([^<]*)</code>", text))
    assert rows == {"Everyone": "system_seed", "Readers": "admin", "Synced team": "google_sync"}
    assert "Refresh my groups" not in text  # group sync is not configured here
    assert "action='/auth/logout'" in text


def test_admin_sees_admin_link_and_admin_scope_box(server: LiveServer) -> None:
    principal = server.services.tokens.authenticate(server.admin_token, record_use=False)
    admin = server.services.users.get(principal.user_id)
    with browser(server, admin) as client:
        text = client.get("/me").text
    assert "href='/admin'" in text and "name='admin'" in text


def test_only_granted_tables_and_metrics(server: LiveServer) -> None:
    user = reader(server)
    with browser(server, user) as client:
        text = client.get("/me").text
    tables = text[text.index("id='tables'") : text.index("id='metrics'")]
    metrics = text[text.index("id='metrics'") :]
    assert "me_open" in tables and "me_hidden" not in tables
    assert "<td>local</td>" in tables or "<td>materialized</td>" in tables
    assert "<td>1,234</td>" in tables  # rows as the admin pages write them, not "1234"
    assert "me/open_count" in metrics
    assert "me/hidden_count" not in metrics  # granted, but over a table the user may not read
    outsider = add_user(server.services)
    with browser(server, outsider) as client:
        text = client.get("/me").text
    assert "me_open" not in text and "me/open_count" not in text


def test_create_token_shown_once_and_works(server: LiveServer) -> None:
    user = reader(server)
    with browser(server, user) as client:
        page = client.get("/me")
        assert "&lt;TOKEN&gt;" in page.text and "name='admin'" not in page.text
        created = client.post(
            "/me/tokens", data={"csrf": csrf_of(page), "name": "laptop", "expires_in_days": "30"}
        )
        assert created.status_code == 200, created.text
        raws = set(RAW_TOKEN.findall(created.text))
        assert len(raws) == 1
        raw = raws.pop()
        base = server.base_url
        assert f"agnes init --server-url {base} --token {raw}" in created.text
        assert (
            f"claude mcp add --transport http agnes {base}/mcp "
            f"--header &quot;Authorization: Bearer {raw}&quot;" in created.text
        )
        # OAuth on (the default): the line without a token comes first
        oauth_line = f"claude mcp add --transport http agnes {base}/mcp</pre>"
        assert created.text.index(oauth_line) < created.text.index("--header &quot;")
        assert "nonce=" in created.text and "data-copy='new-token'" in created.text
        again = client.get("/me")
        assert raw not in again.text and "laptop" in again.text
    [token] = server.services.token_store.all(user_id=user.id)
    assert token.name == "laptop" and token.scopes == ["data"] and token.expires_at
    with server.services.store.cursor() as cur:
        stored = cur.execute(
            "SELECT token_hash FROM personal_access_tokens WHERE id = ?", [token.id]
        ).fetchone()
    assert stored == (hashlib.sha256(raw.encode()).hexdigest(),)
    with server.client(raw) as api:
        assert api.get("/api/whoami").json()["email"] == user.email
    server.services.write_behind.flush()
    entries = server.services.audit_log.recent(user_id=user.id)
    assert [(e.action, e.resource) for e in entries if e.action == "token.create"] == [
        ("token.create", token.id)
    ]
    assert all(raw not in str(e.params) for e in entries)


def test_non_admin_cannot_make_an_admin_token(server: LiveServer) -> None:
    user = reader(server)
    with browser(server, user) as client:
        csrf = csrf_of(client.get("/me"))
        page = client.post("/me/tokens", data={"csrf": csrf, "name": "sneaky", "admin": "on"})
    assert page.status_code == 422
    assert "id='error-admin'" in page.text
    assert token_rows(server, user) == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "bell\x07"}, "name"),
        ({"name": "ok", "expires_in_days": "0"}, "expires_in_days"),
        ({"name": "ok", "expires_in_days": "3651"}, "expires_in_days"),
        ({"name": "ok", "expires_in_days": "ten"}, "expires_in_days"),
        ({"name": "ok", "expires_in_days": "-5"}, "expires_in_days"),
    ],
)
def test_bad_input_is_shown_beside_the_field(
    server: LiveServer, fields: dict[str, str], field: str
) -> None:
    user = reader(server)
    with browser(server, user) as client:
        csrf = csrf_of(client.get("/me"))
        page = client.post("/me/tokens", data={"csrf": csrf, **fields})
    assert page.status_code == 422
    assert f"id='error-{field}'" in page.text
    assert not RAW_TOKEN.search(page.text)
    assert token_rows(server, user) == []


def test_revoke_mine(server: LiveServer) -> None:
    user = reader(server)
    raw = token_for(server.services, user)
    [(token_id, _)] = token_rows(server, user)
    with browser(server, user) as client:
        csrf = csrf_of(client.get("/me"))
        done = client.post(f"/me/tokens/{token_id}/revoke", data={"csrf": csrf})
        assert done.status_code == 303 and done.headers["location"].startswith("/me")
        assert "revoked" in client.get("/me").text
    assert token_rows(server, user) == [(token_id, "revoked")]
    with server.client(raw) as api:
        assert api.get("/api/whoami").status_code == 401
    server.services.write_behind.flush()
    actions = [e.action for e in server.services.audit_log.recent(user_id=user.id)]
    assert "token.revoke" in actions


def test_revoking_someone_elses_token_is_not_found(server: LiveServer) -> None:
    owner, other = reader(server), reader(server)
    raw = token_for(server.services, owner)
    [(token_id, _)] = token_rows(server, owner)
    with browser(server, other) as client:
        csrf = csrf_of(client.get("/me"))
        refused = client.post(f"/me/tokens/{token_id}/revoke", data={"csrf": csrf})
        unknown = client.post("/me/tokens/tok_nope/revoke", data={"csrf": csrf})
    assert refused.status_code == 404 and unknown.status_code == 404
    assert refused.text.replace(token_id, "") == refused.text  # nothing about the token
    assert token_rows(server, owner) == [(token_id, None)]
    with server.client(raw) as api:
        assert api.get("/api/whoami").status_code == 200


@pytest.mark.parametrize("csrf", [None, "", "0" * 64])
def test_csrf_missing_or_wrong_is_refused(server: LiveServer, csrf: str | None) -> None:
    user = reader(server)
    token_for(server.services, user)
    [(token_id, _)] = token_rows(server, user)
    data = {} if csrf is None else {"csrf": csrf}
    with browser(server, user) as client:
        made = client.post("/me/tokens", data={**data, "name": "laptop"})
        revoked = client.post(f"/me/tokens/{token_id}/revoke", data=data)
    for response in (made, revoked):
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("text/html")
    assert token_rows(server, user) == [(token_id, None)]


def test_another_sessions_csrf_is_refused(server: LiveServer) -> None:
    user, other = reader(server), reader(server)
    with browser(server, other) as client:
        foreign = csrf_of(client.get("/me"))
    with browser(server, user) as client:
        page = client.post("/me/tokens", data={"csrf": foreign, "name": "laptop"})
    assert page.status_code == 403
    assert token_rows(server, user) == []


def test_cross_site_post_is_refused_by_the_host_guard(server: LiveServer) -> None:
    user = reader(server)
    with browser(server, user) as client:
        csrf = csrf_of(client.get("/me"))
        page = client.post(
            "/me/tokens",
            data={"csrf": csrf, "name": "laptop"},
            headers={"Origin": "https://attacker.example.com"},
        )
    assert page.status_code == 403
    assert page.json()["error"]["code"] == "origin_not_allowed"
    assert token_rows(server, user) == []


def test_user_supplied_text_is_escaped(server: LiveServer) -> None:
    user = reader(server, "<script>alert('name')</script>")
    with browser(server, user) as client:
        csrf = csrf_of(client.get("/me"))
        page = client.post("/me/tokens", data={"csrf": csrf, "name": "<img src=x onerror=1>"})
        later = client.get("/me")
    for text in (page.text, later.text):
        assert "<script>alert" not in text and "<img src=x" not in text
        assert "&lt;script&gt;alert(&#x27;name&#x27;)&lt;/script&gt;" in text
        assert "&lt;img src=x onerror=1&gt;" in text


def test_last_group_sync_outcome_is_shown(server: LiveServer) -> None:
    failed, fine, never = reader(server), reader(server), reader(server)
    sync = server.services.group_sync.repository
    sync.record_failure(failed.id, utcnow(), "The Directory API answered 503 <twice>.")
    sync.apply(fine.id, [WantedGroup("team@example.com", name="Synced team")], utcnow())
    texts = {}
    for user in (failed, fine, never):
        with browser(server, user) as client:
            texts[user.id] = client.get("/me").text
    assert "failed</span>: The Directory API answered 503 &lt;twice&gt;." in texts[failed.id]
    assert "<span class='ok'>ok</span>, 1 group(s)" in texts[fine.id]
    assert "<td>Synced team</td><td>Google Workspace group sync</td>" in texts[fine.id]
    assert "id='group-sync'" not in texts[never.id]


def test_refresh_button_only_when_group_sync_is_on(server: LiveServer) -> None:
    user = reader(server)
    session, _ = server.services.web_sessions.sign_in(user.id, "token")
    view = me_view.load(server.services, session)
    assert not view.group_sync_enabled  # no service account configured on this server
    off = me_page(view, "Agnes").body.decode()
    on = me_page(replace(view, group_sync_enabled=True), "Agnes").body.decode()
    form = "<form method='post' action='/auth/refresh-groups' class='inline'>"
    assert form not in off and "Refresh my groups" not in off
    assert f"{form}<input type='hidden' name='csrf' value='{session.csrf}'>" in on
