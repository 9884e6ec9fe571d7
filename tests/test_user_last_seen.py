"""When a user was last seen: the latest of their web sessions' last use (a sign-in
counts), their tokens' and OAuth grants' last use and their last pull, read for every
user at once (the admin's lists had a "Last pull" alone, so a person who only signs in
to the web pages, or only uses an MCP client, showed nowhere as active)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from agnes_admin.context import PageContext
from agnes_admin.pages.access import AccessPage
from agnes_mcp import access_admin
from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
from agnes_mcp.services import Services
from agnes_mcp.store.ids import new_id
from agnes_mcp.store.oauth import OAuthGrant
from agnes_mcp.store.tokens import TokenUse
from agnes_mcp.store.users import User
from agnes_mcp.store.web_sessions import WebSessionRepository
from cli.main import main
from tests.conftest import LiveServer, add_user

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def grant_for(services: Services, user: User) -> str:
    grant_id = new_id("oag")
    services.oauth_store.add_grant(
        OAuthGrant(
            id=grant_id,
            user_id=user.id,
            client_id="client",
            client_name="An MCP client",
            scopes=["data"],
            resource="https://agnes.example.com/mcp",
            created_at=T0,
            last_used_at=None,
            revoked_at=None,
            revoked_why=None,
        )
    )
    return grant_id


def seen(services: Services, user: User) -> datetime | None:
    listed = services.users.last_seen()
    assert services.users.last_seen(user.id) == (
        {user.id: listed[user.id]} if user.id in listed else {}
    )
    return listed.get(user.id)


def test_each_source_moves_last_seen_and_the_latest_wins(services: Services) -> None:
    user = add_user(services)
    other = add_user(services)
    assert seen(services, user) is None  # never seen: not in the result

    services.users.record_pull(user.id, T0)
    assert seen(services, user) == T0

    info, _ = services.tokens.create(user.id, "laptop")
    services.token_store.record_uses([TokenUse(info.id, T0 + timedelta(hours=1), None)])
    assert seen(services, user) == T0 + timedelta(hours=1)

    grant_id = grant_for(services, user)
    services.oauth_store.record_uses([(grant_id, T0 + timedelta(hours=2))])
    assert seen(services, user) == T0 + timedelta(hours=2)

    session, _ = services.web_sessions.sign_in(user.id, "oidc")  # now: later than T0
    signed_in = session_seen(services, session.id)
    assert signed_in > T0 + timedelta(hours=2) and seen(services, user) == signed_in

    # older uses recorded later do not move it back
    services.users.record_pull(user.id, T0 - timedelta(days=1))
    services.token_store.record_uses([TokenUse(info.id, T0, None)])
    assert seen(services, user) == signed_in
    assert seen(services, other) is None  # one user's uses are not another's


def session_seen(services: Services, session_id: str) -> datetime:
    record = WebSessionRepository(services.store).get(session_id)
    assert record is not None
    return record.last_seen_at


def test_a_web_sign_in_alone_counts_as_seen(services: Services) -> None:
    """A person who signs in with Google and never makes a token was shown nowhere as
    active: the sign-in and every later use of the session count."""
    user = add_user(services)
    session, _ = services.web_sessions.sign_in(user.id, "oidc")
    assert seen(services, user) == session_seen(services, session.id)

    WebSessionRepository(services.store).record_seen([(session.id, T0.replace(year=2030))])
    assert seen(services, user) == T0.replace(year=2030)


def test_the_listing_reads_a_fixed_number_of_times_whatever_the_users(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading each user's groups or last use one by one made the listing one read per
    user: it is a fixed number of reads."""
    cursor = services.store.cursor
    opened: list[int] = []

    def counted() -> object:
        opened.append(1)
        return cursor()

    monkeypatch.setattr(services.store, "cursor", counted)

    def reads(users: int) -> int:
        for _ in range(users):
            services.users.record_pull(add_user(services).id, T0)
        access_admin.users_with_groups(services)  # the group names cached from here on
        opened.clear()
        listed = access_admin.users_with_groups(services)
        assert [u.last_seen_at for u in listed] == [T0] * len(listed)
        return len(opened)

    assert reads(2) == reads(6) <= 3


def test_the_api_and_the_cli_list_last_seen(
    live_server: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    services = live_server.services
    web = add_user(services)  # signs in to the web pages and does nothing else
    services.web_sessions.sign_in(web.id, "oidc")
    pulled = add_user(services)
    services.users.record_pull(pulled.id, T0)
    never = add_user(services)

    with live_server.client(live_server.admin_token) as client:
        listed = {u["email"]: u for u in client.get("/api/admin/users").json()["users"]}
        one = client.get(f"/api/admin/users/{pulled.email}").json()
    assert listed[web.email]["last_seen_at"] is not None
    assert listed[pulled.email]["last_seen_at"] == one["last_seen_at"]
    assert datetime.fromisoformat(one["last_seen_at"]) == T0
    assert listed[never.email]["last_seen_at"] is None

    def cli(*argv: str) -> str:
        capsys.readouterr()
        server = ["--server-url", live_server.base_url, "--token", live_server.admin_token]
        code = main(["admin", "user", "list", *argv, *server])
        out, err = capsys.readouterr()
        assert code == 0, err
        return out

    as_json = {u["email"]: u for u in json.loads(cli("--json"))["users"]}
    assert as_json[pulled.email]["last_seen_at"] == one["last_seen_at"]
    assert as_json[never.email]["last_seen_at"] is None
    text = cli()
    assert "Last seen" in text
    row = next(line for line in text.splitlines() if pulled.email in line)
    assert "2026-11-01 09:00" in row
    assert "never" in next(line for line in text.splitlines() if never.email in line)


def test_the_access_page_shows_last_seen_in_utc_or_never(services: Services) -> None:
    admin = add_user(services, (ADMIN_GROUP_ID,))
    session, _ = services.web_sessions.sign_in(admin.id, "oidc")
    pulled = add_user(services)
    services.users.record_pull(pulled.id, T0)
    never = add_user(services)
    page = AccessPage(PageContext(services, session.id))
    page.refresh()
    shown = dict(
        zip(page.users_table.value["email"], page.users_table.value["last_seen"], strict=True)
    )
    assert shown[pulled.email] == "2026-11-01 09:00 UTC"
    assert shown[never.email] == "never"
    assert shown[admin.email].endswith(" UTC")  # signed in: seen
