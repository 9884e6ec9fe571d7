"""OAuth grants, listed and revoked: the admin REST routes, the service under them, the
Tokens page's section (plain Python) and ``/me``'s "Connected applications", over a real
server. Grants are made with ``services.oauth.start_grant`` (what a consent turns into);
the whole sign-in dance is exercised elsewhere (tests/test_admin_browser.py, the SDK tests).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agnes_admin.context import PageContext
from agnes_admin.pages.tokens import TokensPage
from agnes_mcp import oauth_admin
from agnes_mcp.auth.sessions import SESSION_COOKIE
from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
from agnes_mcp.errors import OAuthGrantNotFound
from agnes_mcp.oauth.token_service import IssuedTokens
from agnes_mcp.services import Services
from agnes_mcp.store.audit import AuditRow
from agnes_mcp.store.users import User
from tests.conftest import LiveServer, add_user, running_server, token_for
from tests.mcp_raw import INITIALIZE, MCP_HEADERS

GRANTS = "/api/admin/oauth-grants"
CSRF_FIELD = re.compile(r"name='csrf' value='([^']+)'")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root: Path = tmp_path_factory.mktemp("oauth-admin")
    with running_server(root / "data", scheduler_enabled=False) as live:
        yield live


def start_grant(services: Services, user: User, client: str = "Claude Desktop") -> IssuedTokens:
    return services.oauth.start_grant(
        user_id=user.id,
        client_id=f"client-{client.lower().replace(' ', '-')}",
        client_name=client,
        scopes=["data"],
        resource=services.settings.base_url + "/mcp",
    )


def at_mcp(server: LiveServer, token: str) -> httpx.Response:
    """An MCP ``initialize`` sent to ``/mcp`` with ``token``."""
    with server.client(token) as client:
        return client.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)


def audit(services: Services, action: str, resource: str) -> list[AuditRow]:
    services.write_behind.flush()
    rows = services.audit_log.recent(limit=500)
    return [r for r in rows if r.action == action and r.resource == resource]


def admin_id(server: LiveServer) -> str:
    return server.services.tokens.authenticate(server.admin_token, record_use=False).user_id


# --- the REST routes -------------------------------------------------------------------


def test_admins_list_grants_per_user_with_email_use_and_status(server: LiveServer) -> None:
    services = server.services
    ana, bob = add_user(services), add_user(services)
    desktop = start_grant(services, ana, "Claude Desktop")
    cursor = start_grant(services, ana, "Cursor")
    zed = start_grant(services, bob, "Zed")
    services.oauth.revoke_grant(cursor.grant.id, "test")
    services.oauth.authenticate(desktop.access_token)  # a use, recorded by the write-behind
    services.write_behind.flush()

    with server.client(server.admin_token) as admin:
        by_email = admin.get(GRANTS, params={"user": ana.email})
        assert by_email.status_code == 200, by_email.text
        grants = {g["client_name"]: g for g in by_email.json()["grants"]}
        assert set(grants) == {"Claude Desktop", "Cursor"}
        assert {g["user_email"] for g in grants.values()} == {ana.email}
        assert grants["Claude Desktop"]["status"] == "active"
        assert grants["Claude Desktop"]["last_used_at"] is not None
        assert grants["Claude Desktop"]["created_at"] is not None
        assert grants["Cursor"]["status"] == "revoked" and grants["Cursor"]["revoked_at"]
        assert grants["Cursor"]["last_used_at"] is None

        active = admin.get(GRANTS, params={"user": ana.id, "active": "true"}).json()["grants"]
        assert [g["id"] for g in active] == [desktop.grant.id]

        everyone = {g["id"]: g for g in admin.get(GRANTS).json()["grants"]}
        assert {desktop.grant.id, cursor.grant.id, zed.grant.id} <= set(everyone)
        assert everyone[zed.grant.id]["user_email"] == bob.email

        missing = admin.get(GRANTS, params={"user": "nobody@example.com"})
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "user_not_found"
    assert not any("agnesat_" in str(g) or "agnesrt_" in str(g) for g in everyone.values())


def test_only_admins_list_or_revoke_and_oauth_tokens_stay_off_the_rest_api(
    server: LiveServer,
) -> None:
    services = server.services
    analyst = add_user(services)
    issued = start_grant(services, analyst)
    with server.client(token_for(services, analyst)) as api:
        listed = api.get(GRANTS, params={"user": analyst.email})
        assert listed.status_code == 403
        assert listed.json()["error"]["code"] == "admin_required"
        refused = api.delete(f"{GRANTS}/{issued.grant.id}")
        assert refused.status_code == 403
    with server.client(issued.access_token) as oauth_client:  # bound to /mcp (RFC 8707)
        assert oauth_client.get(GRANTS).status_code == 401
    assert services.oauth.grant(issued.grant.id).revoked_at is None


def test_an_admin_revokes_a_grant_and_the_users_pat_keeps_working(server: LiveServer) -> None:
    services = server.services
    user = add_user(services)
    pat = token_for(services, user)
    issued = start_grant(services, user)
    assert at_mcp(server, issued.access_token).status_code == 200
    assert at_mcp(server, pat).status_code == 200

    with server.client(server.admin_token) as admin:
        answer = admin.delete(f"{GRANTS}/{issued.grant.id}")
        assert answer.status_code == 200, answer.text
        revoked = answer.json()
        assert revoked["status"] == "revoked" and revoked["revoked_at"]
        assert revoked["user_email"] == user.email
        assert revoked["revoked_why"].startswith("revoked by the admin")

        refused = at_mcp(server, issued.access_token)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "token_revoked"
        assert services.oauth.find_refresh(issued.refresh_token) is None  # no new pair either
        assert at_mcp(server, pat).status_code == 200  # PATs work side by side
        with server.client(pat) as api:
            assert api.get("/api/whoami").json()["email"] == user.email

        again = admin.delete(f"{GRANTS}/{issued.grant.id}")  # a second revoke changes nothing
        assert again.status_code == 200 and again.json()["revoked_at"] == revoked["revoked_at"]
        assert not revoked["already_revoked"] and again.json()["already_revoked"]
        unknown = admin.delete(f"{GRANTS}/oag_nothing_here")
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "oauth_grant_not_found"

    (row, *_) = audit(services, "oauth.grant.revoke", issued.grant.id)
    assert row.user_id == admin_id(server)
    assert row.params == {"by": "admin", "user": user.id, "client": "Claude Desktop"}


# --- the service -----------------------------------------------------------------------


def test_revoking_someone_elses_grant_as_yourself_looks_like_no_grant(server: LiveServer) -> None:
    services = server.services
    owner, other = add_user(services), add_user(services)
    issued = start_grant(services, owner)
    stranger = services.tokens.authenticate(token_for(services, other), record_use=False)
    admin = services.tokens.authenticate(server.admin_token, record_use=False)

    with pytest.raises(OAuthGrantNotFound) as theirs:
        oauth_admin.revoke_own(services, stranger, issued.grant.id)
    with pytest.raises(OAuthGrantNotFound) as nothing:
        oauth_admin.revoke_own(services, stranger, "oag_missing")
    assert theirs.value.message.replace(issued.grant.id, "ID") == nothing.value.message.replace(
        "oag_missing", "ID"
    )
    with pytest.raises(OAuthGrantNotFound):  # admins too: /me acts on your own grants only
        oauth_admin.revoke_own(services, admin, issued.grant.id)
    assert services.oauth.grant(issued.grant.id).revoked_at is None
    assert audit(services, "oauth.grant.revoke", issued.grant.id) == []

    mine = services.tokens.authenticate(token_for(services, owner), record_use=False)
    assert [g.id for g in oauth_admin.own_grants(services, mine)] == [issued.grant.id]
    assert oauth_admin.own_grants(services, stranger) == []
    assert oauth_admin.revoke_own(services, mine, issued.grant.id).status == "revoked"
    (row,) = audit(services, "oauth.grant.revoke", issued.grant.id)
    assert row.params["by"] == "user" and row.user_id == owner.id


# --- /me -------------------------------------------------------------------------------


def signed_in(server: LiveServer, user: User) -> httpx.Client:
    _, cookie = server.services.web_sessions.sign_in(user.id, "token")
    return server.client(cookies={SESSION_COOKIE: cookie}, follow_redirects=False)


def csrf_of(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found, "the page has a CSRF field"
    return found[1]


def oauth_section(html: str) -> str:
    start = html.index("<section id='oauth'>")
    return html[start : html.index("</section>", start)]


def test_me_lists_connected_applications_and_revokes_one(server: LiveServer) -> None:
    services = server.services
    user = add_user(services)
    issued = start_grant(services, user, "<b>Claude</b> & co")
    revoke_path = f"/me/oauth/{issued.grant.id}/revoke"
    with signed_in(server, user) as browser:
        page = browser.get("/me")
        assert page.status_code == 200
        section = oauth_section(page.text)
        assert "Connected applications" in section
        assert "&lt;b&gt;Claude&lt;/b&gt; &amp; co" in section and "<b>Claude" not in page.text
        assert f"action='{revoke_path}'" in section
        csrf = csrf_of(page.text)

        forged = browser.post(revoke_path, data={"csrf": "not-the-token"})
        assert forged.status_code == 403
        assert services.oauth.grant(issued.grant.id).revoked_at is None

        done = browser.post(revoke_path, data={"csrf": csrf})
        assert done.status_code == 303 and done.headers["location"] == "/me#oauth"
        assert services.oauth.grant(issued.grant.id).revoked_at is not None
        assert at_mcp(server, issued.access_token).status_code == 401

        after = oauth_section(browser.get("/me").text)
        assert "revoked" in after and revoke_path not in after
    (row,) = audit(services, "oauth.grant.revoke", issued.grant.id)
    assert row.params["by"] == "user" and row.user_id == user.id


def test_me_answers_someone_elses_grant_as_missing(server: LiveServer) -> None:
    services = server.services
    owner, other = add_user(services), add_user(services)
    issued = start_grant(services, owner)
    revoke_path = f"/me/oauth/{issued.grant.id}/revoke"
    with signed_in(server, other) as browser:
        page = browser.get("/me")
        assert "No application has signed in as you." in oauth_section(page.text)
        answer = browser.post(revoke_path, data={"csrf": csrf_of(page.text)})
        assert answer.status_code == 404 and "No such connected application" in answer.text
    with server.client(follow_redirects=False) as signed_out:
        assert signed_out.post(revoke_path, data={"csrf": "x"}).status_code == 303
    assert services.oauth.grant(issued.grant.id).revoked_at is None


# --- the Tokens page's section, in plain Python ----------------------------------------


def click(button: Any) -> None:
    button.clicks += 1


def test_the_tokens_page_lists_and_revokes_grants_after_a_confirmation(
    services: Services,
) -> None:
    admin = add_user(services, (ADMIN_GROUP_ID,), email="boss@example.com")
    analyst = add_user(services, email="ana@example.com")
    pat = token_for(services, analyst)
    desktop = start_grant(services, analyst, "Claude Desktop")
    start_grant(services, admin, "Cursor")
    session, _ = services.web_sessions.sign_in(admin.id, "token")
    page = TokensPage(PageContext(services, session.id))
    section = page.oauth

    rows = {r["client"]: r for r in section.table.value.to_dict("records")}
    assert rows["Claude Desktop"]["user"] == "ana@example.com"
    assert rows["Claude Desktop"]["status"] == "active"
    assert rows["Claude Desktop"]["last_used"] == "never" and rows["Claude Desktop"]["created"]
    section.user_filter.value = analyst.id
    assert list(section.table.value["client"]) == ["Claude Desktop"]

    click(section.revoke_button)  # nothing selected: says so, revokes nothing
    assert "Select a grant first." in section.actions.message.object
    section.table.selection = [0]
    click(section.revoke_button)
    assert section.confirm.view.visible and "Claude Desktop" in section.confirm.text.object
    click(section.confirm.no)
    assert services.oauth.grant(desktop.grant.id).revoked_at is None

    section.table.selection = [0]
    click(section.revoke_button)
    click(section.confirm.yes)
    assert services.oauth.grant(desktop.grant.id).revoked_at is not None
    assert "Revoked the OAuth grant" in section.actions.message.object
    assert list(section.table.value["status"]) == ["revoked"]
    section.status_filter.value = "active"
    assert list(section.table.value["client"]) == []
    assert services.tokens.authenticate(pat).user_id == analyst.id  # the PAT is untouched
    (row,) = audit(services, "oauth.grant.revoke", desktop.grant.id)
    assert row.user_id == admin.id and row.params["by"] == "admin"

    # another page revokes it again: it says so, and writes nothing (it said "Revoked the
    # OAuth grant" and audited a revoke of nothing)
    stale = TokensPage(PageContext(services, session.id)).oauth
    stale.user_filter.value = analyst.id
    stale.table.selection = [0]
    click(stale.revoke_button)
    click(stale.confirm.yes)
    said = stale.actions.message.object
    assert "already revoked" in said and "nothing changed" in said, said
    assert len(audit(services, "oauth.grant.revoke", desktop.grant.id)) == 1
