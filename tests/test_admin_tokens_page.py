"""The admin app's Tokens page in plain Python against real services: list and filter every
token, create one for a user (its raw value shown once, valid, then gone), revoke with a
confirmation, refuse bad input beside the field, and change nothing for a signed-out admin."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from agnes_admin.context import PageContext
from agnes_admin.pages.tokens import COPY_JS, TokensPage
from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
from agnes_mcp.errors import TokenRevoked
from agnes_mcp.services import Services
from agnes_mcp.store.audit import AuditRow
from agnes_mcp.store.users import User
from tests.conftest import add_user, token_for


@pytest.fixture
def admin(services: Services) -> User:
    return add_user(services, (ADMIN_GROUP_ID,), email="boss@example.com")


@pytest.fixture
def ctx(services: Services, admin: User) -> PageContext:
    session, _ = services.web_sessions.sign_in(admin.id, "token")
    return PageContext(services, session.id)


@pytest.fixture
def analyst(services: Services) -> User:
    return add_user(services, email="ana@example.com")


@pytest.fixture
def page(ctx: PageContext, analyst: User) -> TokensPage:
    return TokensPage(ctx)


def audit(services: Services, action: str) -> list[AuditRow]:
    services.write_behind.flush()
    return [r for r in services.audit_log.recent(limit=500) if r.action == action]


def click(button: Any) -> None:
    button.clicks += 1


def shown(page: TokensPage, column: str) -> list[Any]:
    return list(page.table.value[column])


def test_every_token_is_listed_with_use_and_filters(
    services: Services, page: TokensPage, admin: User, analyst: User
) -> None:
    raw = token_for(services, analyst)
    services.tokens.authenticate(raw, "203.0.113.7")
    services.write_behind.flush()
    _, other = services.tokens.create(admin.id, "ops", ["data", "admin"])
    services.tokens.revoke(services.tokens.authenticate(other).token_id or "")
    page.refresh()

    rows = {r["owner"]: r for r in page.table.value.to_dict("records")}
    assert rows["ana@example.com"]["last_used_ip"] == "203.0.113.7"
    assert rows["ana@example.com"]["last_used"]
    assert rows["ana@example.com"]["status"] == "active"
    assert rows["boss@example.com"]["scopes"] == "admin, data"
    assert rows["boss@example.com"]["revoked"] and rows["boss@example.com"]["status"] == "revoked"
    assert "token_hash" not in page.table.value.columns

    page.owner_filter.value = analyst.id
    assert shown(page, "owner") == ["ana@example.com"]
    page.owner_filter.value = ""
    page.status_filter.value = "revoked"
    assert shown(page, "name") == ["ops"]
    page.status_filter.value = ""
    page.name_filter.value = "TES"
    assert shown(page, "name") == ["test"]
    # a deactivated user's token is refused: not shown as "active"
    page.name_filter.value = ""
    services.users.set_active(analyst.id, False)
    page.refresh()
    rows = {r["owner"]: r for r in page.table.value.to_dict("records")}
    assert rows["ana@example.com"]["status"] == "owner deactivated"
    page.status_filter.value = "active"
    assert "ana@example.com" not in shown(page, "owner")


def test_create_for_a_user_shows_the_raw_token_once(
    services: Services, page: TokensPage, admin: User, analyst: User
) -> None:
    page.owner.value = analyst.id
    page.name.value = "notebook"
    page.scopes.value = ["data"]
    page.expires_in_days.value = 30
    click(page.create_button)

    raw = page.raw_token.value
    assert page.created.visible and raw.startswith("agnes_")
    principal = services.tokens.authenticate(raw)
    assert (principal.user_id, principal.scopes) == (analyst.id, frozenset({"data"}))
    (info,) = services.token_store.all(user_id=analyst.id)
    assert info.name == "notebook" and info.expires_at is not None
    assert shown(page, "name") == ["notebook"]
    (row,) = audit(services, "token.create")
    assert (row.user_id, row.resource, row.params["user"]) == (admin.id, info.id, analyst.id)
    services.write_behind.flush()
    with services.store.cursor() as cur:  # the raw value is nowhere in the system DB
        dumped = cur.execute("SELECT params FROM audit_log").fetchall()
    assert raw not in repr(dumped)
    assert "field.value" in COPY_JS  # the copy button reads the field in the browser

    page.name_filter.value = "note"  # the next action forgets it
    assert page.raw_token.value == "" and not page.created.visible


def test_a_second_click_never_hides_the_token_or_makes_another(
    services: Services,
    page: TokensPage,
    analyst: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A double click: the click that arrives while the token is being made is dropped
    (page callbacks run on several threads: both made a token, one never shown); the one
    that arrives after it (the name now cleared) is refused and the token stays shown."""
    from agnes_mcp import access_admin

    making, go = threading.Event(), threading.Event()
    create_token = access_admin.create_token

    def slow_create(*args: Any, **kwargs: Any) -> Any:
        if not making.is_set():  # the first click's create waits for the second click
            making.set()
            go.wait()
        return create_token(*args, **kwargs)

    monkeypatch.setattr(access_admin, "create_token", slow_create)
    page.owner.value = analyst.id
    page.name.value = "twice"
    first = threading.Thread(target=click, args=(page.create_button,))
    first.start()
    making.wait()
    click(page.create_button)  # while the first is being made: dropped
    go.set()
    first.join()
    raw = page.raw_token.value
    assert raw.startswith("agnes_") and page.created.visible
    click(page.create_button)  # after it: the name is cleared, so refused
    assert "required" in str(page.create_form.errors["name"].object)
    assert page.raw_token.value == raw and page.created.visible  # still shown
    assert [t.name for t in services.token_store.all(user_id=analyst.id)] == ["twice"]


def test_revoke_needs_confirmation_and_the_token_then_fails(
    services: Services, page: TokensPage, admin: User, analyst: User
) -> None:
    raw = token_for(services, analyst)
    page.refresh()
    page.table.selection = [shown(page, "owner").index(analyst.email)]
    click(page.revoke_button)
    assert page.confirm.view.visible
    assert services.tokens.authenticate(raw).user_id == analyst.id  # nothing yet
    click(page.confirm.yes)

    with pytest.raises(TokenRevoked):
        services.tokens.authenticate(raw)
    assert page.table.value.to_dict("records")[0]["status"] == "revoked"
    (row,) = audit(services, "token.revoke")
    assert (row.user_id, row.params["user"]) == (admin.id, analyst.id)


def test_a_token_revoked_meanwhile_is_not_revoked_or_audited_twice(
    services: Services, ctx: PageContext, analyst: User
) -> None:
    """Two open Tokens pages revoking one token wrote two ``token.revoke`` rows; and the
    second page said "Revoked" of a token it had not revoked."""
    token_for(services, analyst)
    pages = [TokensPage(ctx), TokensPage(ctx)]
    for one in pages:
        one.refresh()
        one.table.selection = [shown(one, "owner").index(analyst.email)]
    revoked_at = []
    for one in pages:
        click(one.revoke_button)
        click(one.confirm.yes)
        revoked_at.append(services.token_store.all(user_id=analyst.id)[0].revoked_at)
    assert len(audit(services, "token.revoke")) == 1
    assert revoked_at[0] is not None and revoked_at[1] == revoked_at[0]
    first, second = (one.actions.message.object for one in pages)
    assert first.startswith("Revoked token")
    assert "already revoked" in second and "nothing changed" in second
    assert not second.startswith("Revoked") and pages[1].actions.message.alert_type == "info"


def test_cancelled_revoke_keeps_the_token(
    services: Services, page: TokensPage, analyst: User
) -> None:
    raw = token_for(services, analyst)
    page.refresh()
    page.table.selection = [0]
    click(page.revoke_button)
    click(page.confirm.no)
    assert services.tokens.authenticate(raw).user_id == analyst.id
    assert audit(services, "token.revoke") == []


@pytest.mark.parametrize(
    ("name", "scopes", "days", "field", "words"),
    [
        ("", ["data"], 30, "name", "required"),
        ("x" * 101, ["data"], 30, "name", "longer than 100"),
        ("ok", [], 30, "scopes", "at least one scope"),
        ("ok", ["data"], 0, "expires_in_days", "1-3650 days"),
        ("ok", ["data"], 4000, "expires_in_days", "1-3650 days"),
        ("ok", ["admin", "data"], 30, "scopes", "not in the Admin group"),
    ],
)
def test_bad_token_input_is_shown_beside_the_field_and_creates_nothing(
    services: Services,
    page: TokensPage,
    analyst: User,
    name: str,
    scopes: list[str],
    days: int,
    field: str,
    words: str,
) -> None:
    page.owner.value = analyst.id
    page.name.value = name
    page.scopes.value = scopes
    page.expires_in_days.value = days
    click(page.create_button)
    error = page.create_form.errors[field]
    assert error.visible and words in str(error.object)
    assert services.token_store.all() == []
    assert page.raw_token.value == "" and not page.created.visible
    assert audit(services, "token.create") == []


def test_a_signed_out_admin_creates_and_revokes_nothing(
    services: Services, page: TokensPage, ctx: PageContext, analyst: User
) -> None:
    raw = token_for(services, analyst)
    page.refresh()
    services.web_sessions.sign_out(ctx.session_id)

    page.owner.value = analyst.id
    page.name.value = "sneaky"
    click(page.create_button)
    assert "signed out" in str(page.create_form.message.object)
    assert page.raw_token.value == ""
    assert [t.name for t in services.token_store.all()] == ["test"]

    page.table.selection = [0]
    click(page.revoke_button)
    click(page.confirm.yes)
    assert "signed out" in str(page.actions.message.object)
    assert services.tokens.authenticate(raw).user_id == analyst.id
    assert audit(services, "token.create") == audit(services, "token.revoke") == []


def test_a_name_holding_html_is_shown_as_text_never_run(
    services: Services, page: TokensPage, analyst: User
) -> None:
    """An analyst named a token ``<img src=x onerror=...>``; the revoke confirmation
    rendered it as HTML in the admin's browser (script ran, an admin token was minted)."""
    import panel as pn

    evil = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    services.tokens.create(analyst.id, evil)
    page.refresh()
    page.table.selection = [shown(page, "name").index(evil)]
    click(page.revoke_button)
    assert page.confirm.view.visible
    rendered = [
        pane._transform_object(pane.object)["object"]
        for pane in page.confirm.view.select(pn.pane.Markdown)
    ]
    said = "".join(rendered)
    assert "onerror" in said  # the name is shown ...
    assert "&lt;img" not in said and "&lt;script" not in said  # ... as text, not as tags
    assert "&amp;lt;img" in said


@pytest.mark.parametrize("ended_by", ["sign-out", "deactivation"])
def test_an_open_page_shows_nothing_more_once_its_session_ended(
    services: Services, ctx: PageContext, admin: User, ended_by: str
) -> None:
    """Changes re-check the session at each action; reads did not (a signed-out tab still
    showed profiles and new tables). Each page checks every few seconds and, once its
    admin may no longer use it, is replaced by a message."""
    from agnes_admin.pages import all_pages
    from agnes_admin.shell import end_if_signed_out, shell

    pages = all_pages()
    view = shell(pages[0], ctx, pages)
    assert end_if_signed_out(ctx, view) is False and len(view.objects) > 1
    if ended_by == "sign-out":
        services.web_sessions.sign_out(ctx.session_id)
    else:
        add_user(services, (ADMIN_GROUP_ID,), email="other-boss@example.com")  # not the last
        services.users.set_active(admin.id, False)
    assert end_if_signed_out(ctx, view) is True
    (message,) = view.objects
    assert "Sign in again at /auth/login" in message.object


def test_the_lifetime_box_leaves_range_checks_to_the_service(page: TokensPage) -> None:
    """With start/end on the widget, the browser snapped 99999 back to 90 and the token was
    made with 90 days without a word; out-of-range entries must reach the service, which
    refuses them beside the field (the parametrized test above)."""
    assert page.expires_in_days.start is None and page.expires_in_days.end is None


def test_an_action_is_audited_with_the_pages_client_address(
    services: Services, ctx: PageContext, analyst: User
) -> None:
    """Actions run in the page's callbacks, outside any HTTP request: their audit rows had
    no client address. The gate hands the page its client's address; each action records
    it."""
    from dataclasses import replace

    page = TokensPage(replace(ctx, client_ip="198.51.100.7"))
    page.owner.value = analyst.id
    page.name.value = "from the admin app"
    click(page.create_button)
    (row,) = audit(services, "token.create")
    assert row.client_ip == "198.51.100.7"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/login",
        "//evil.example/login",
        "javascript:alert(1)",
        "HTTPS://evil.example",
        "mailto:x@evil.example",
    ],
)
def test_markdown_links_off_the_server_are_shown_as_text(target: str) -> None:
    """A plugin name in an upstream marketplace.json reached a sync error on the
    Marketplaces page as '[Session expired - sign in again](https://...)': a link off the
    server in the admin's page. Links and images stay on this server; others are text."""
    import panel as pn

    text = f"[Sign in again]({target}) ![logo]({target}) <{target}> [Access](/admin/access)"
    for cls in (pn.pane.Markdown, pn.pane.Alert):
        pane = cls(text)
        rendered = pane._transform_object(pane.object)["object"]
        assert "&lt;a href=&quot;/admin/access&quot;&gt;Access&lt;/a&gt;" in rendered
        assert rendered.count("&lt;a href") == 1 and "&lt;img" not in rendered, rendered


def test_a_name_in_a_confirmation_reads_as_typed(
    services: Services, page: TokensPage, analyst: User
) -> None:
    """A token named ``a*b*`` was asked about as *b* in emphasis: every name a question
    quotes has Markdown's characters escaped (HTML is text already)."""
    services.tokens.create(analyst.id, "a*b* [x](y)", ["data"])
    page.refresh()
    page.table.selection = [shown(page, "owner").index(analyst.email)]
    click(page.revoke_button)
    assert page.confirm.view.visible
    assert "'a\\*b\\* \\[x\\](y)'" in page.confirm.text.object
