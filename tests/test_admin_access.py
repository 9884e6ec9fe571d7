"""The admin app's Access page, driven in plain Python against real services: every change
lands in the store with an audit row naming the admin, bad input is shown beside its field
and saves nothing, and a signed-out admin changes nothing."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from agnes_admin.context import PageContext
from agnes_admin.pages import all_pages
from agnes_admin.pages.access import AccessPage
from agnes_mcp.builtin_groups import ADMIN_GROUP_ID, EVERYONE_GROUP_ID
from agnes_mcp.errors import SessionExpired, UserInactive
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.services import Services
from agnes_mcp.store.audit import AuditRow
from agnes_mcp.store.groups import MembershipSource
from agnes_mcp.store.users import User
from agnes_sync.table_spec import TableSpec
from tests.conftest import add_user, token_for


@pytest.fixture
def admin(services: Services) -> User:
    return add_user(services, (ADMIN_GROUP_ID,), email="boss@example.com")


@pytest.fixture
def ctx(services: Services, admin: User) -> PageContext:
    session, _ = services.web_sessions.sign_in(admin.id, "token")
    return PageContext(services, session.id)


@pytest.fixture
def page(ctx: PageContext) -> AccessPage:
    return AccessPage(ctx)


def audit(services: Services, action: str) -> list[AuditRow]:
    services.write_behind.flush()
    return [r for r in services.audit_log.recent(limit=500) if r.action == action]


def click(button: Any) -> None:
    button.clicks += 1


def select(table: Any, column: str, value: str) -> None:
    rows = list(table.value[column])
    table.selection = [rows.index(value)]


def error_text(pane: Any) -> str:
    return str(pane.object) if pane.visible else ""


def test_the_pages_register_where_the_shell_finds_them() -> None:
    pages = {p.slug: p for p in all_pages()}
    assert (pages["access"].title, pages["access"].order) == ("Access", 30)
    assert (pages["tokens"].title, pages["tokens"].order) == ("Tokens", 40)


def test_build_returns_a_panel_viewable(ctx: PageContext) -> None:
    import panel as pn

    page = next(p for p in all_pages() if p.slug == "access")
    assert isinstance(page.build(ctx), pn.viewable.Viewable)


def test_add_a_user_with_groups(services: Services, page: AccessPage, admin: User) -> None:
    analysts = services.groups.add("Analysts")
    page.refresh()
    page.user_email.value = "New.Person@Example.com"
    page.user_name.value = "New Person"
    page.user_groups.value = ["Analysts"]
    click(page.add_user_button)

    user = services.users.find("new.person@example.com")
    assert user.name == "New Person"
    assert services.groups.group_ids_of(user.id) == {EVERYONE_GROUP_ID, analysts.id}
    assert "new.person@example.com" in list(page.users_table.value["email"])
    assert page.add_user_form.message.visible and "Added" in str(page.add_user_form.message.object)
    assert page.user_email.value == ""
    (row,) = audit(services, "user.add")
    assert (row.user_id, row.resource) == (admin.id, user.id)
    assert row.params["groups"] == [analysts.id]

    select(page.users_table, "email", user.email)
    shown = page.memberships_table.value.to_dict("records")
    assert {"group": "Analysts", "source": "admin"} in shown
    assert {"group": "Everyone", "source": "system_seed"} in shown


def test_a_user_is_found_by_a_part_of_the_email_or_name(
    services: Services, page: AccessPage, admin: User
) -> None:
    """At 1,000 users the list was 20 pages with nothing to search it by."""
    for i in range(60):
        services.users.add(f"person{i:02d}@example.com", "Someone")
    services.users.add("zed@example.com", "Ann Other")
    page.refresh()
    page.user_filter.value = "PERSON5"
    assert sorted(page.users_table.value["email"]) == [f"person5{i}@example.com" for i in range(10)]
    page.user_filter.value = "ann o"
    assert list(page.users_table.value["email"]) == ["zed@example.com"]
    select(page.users_table, "email", "zed@example.com")  # the found row is the one acted on
    click(page.deactivate_button)
    click(page.confirms["users"].yes)
    assert not services.users.find("zed@example.com").active
    assert list(page.users_table.value["email"]) == ["zed@example.com"]  # still filtered
    page.user_filter.value = ""
    assert len(page.users_table.value) == 62


def test_a_double_click_adds_the_user_once_and_says_so_once(
    services: Services, page: AccessPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Page callbacks run on several threads: the second click of a double click ran
    beside the first and said "already exists" next to "Added"."""
    from agnes_mcp import access_admin

    adding, go = threading.Event(), threading.Event()
    add_user_now = access_admin.add_user

    def slow_add(*args: Any, **kwargs: Any) -> Any:
        if not adding.is_set():  # the first click's add waits for the second click
            adding.set()
            go.wait()
        return add_user_now(*args, **kwargs)

    monkeypatch.setattr(access_admin, "add_user", slow_add)
    page.user_email.value = "twice@example.com"
    first = threading.Thread(target=click, args=(page.add_user_button,))
    first.start()
    adding.wait()
    click(page.add_user_button)  # while the first is running: dropped
    go.set()
    first.join()
    assert error_text(page.add_user_form.message) == "Added twice@example.com."
    assert error_text(page.add_user_form.errors["email"]) == ""
    assert [u.email for u in services.users.all()].count("twice@example.com") == 1


@pytest.mark.parametrize(
    ("email", "name", "groups", "field", "words"),
    [
        ("not-an-address", "", [], "email", "not an e-mail"),
        ("boss@example.com", "", [], "email", "already exists"),
        ("fresh@example.com", "Bell\x07", [], "name", "control character"),
        ("fresh@example.com", "", ["Analysts", "Ghosts"], "groups", "Ghosts"),
    ],
)
def test_bad_user_input_is_shown_beside_the_field_and_saves_nothing(
    services: Services,
    page: AccessPage,
    email: str,
    name: str,
    groups: list[str],
    field: str,
    words: str,
) -> None:
    services.groups.add("Analysts")
    page.refresh()
    before = len(services.users.all())
    page.user_email.value, page.user_name.value = email, name
    page.user_groups.param.update(options=["Analysts", "Ghosts"], value=groups)
    click(page.add_user_button)

    assert words in error_text(page.add_user_form.errors[field])
    others = [f for f in page.add_user_form.errors if f != field]
    assert not any(page.add_user_form.errors[f].visible for f in others)
    assert len(services.users.all()) == before
    assert services.users.by_email("fresh@example.com") is None
    assert audit(services, "user.add") == []
    assert page.user_email.value == email  # the form keeps what was typed


def test_deactivating_ends_sessions_and_tokens(
    services: Services, page: AccessPage, admin: User
) -> None:
    user = add_user(services)
    raw = token_for(services, user)
    session, _ = services.web_sessions.sign_in(user.id, "token")
    page.refresh()
    select(page.users_table, "email", user.email)
    click(page.deactivate_button)
    assert page.confirms["users"].view.visible  # asked first
    click(page.confirms["users"].yes)

    assert services.users.get(user.id).active is False
    with pytest.raises(UserInactive):
        services.tokens.authenticate(raw)
    with pytest.raises(SessionExpired):
        services.web_sessions.check(session.id)
    (row,) = audit(services, "user.deactivate")
    assert (row.user_id, row.resource) == (admin.id, user.id)
    assert not page.users_table.value.set_index("email").loc[user.email, "active"]

    select(page.users_table, "email", user.email)
    click(page.activate_button)
    assert services.users.get(user.id).active is True
    assert services.tokens.authenticate(raw).user_id == user.id
    assert audit(services, "user.activate")[0].user_id == admin.id


def test_the_last_admin_cannot_be_deactivated(
    services: Services, page: AccessPage, admin: User
) -> None:
    select(page.users_table, "email", admin.email)
    click(page.deactivate_button)
    assert page.confirms["users"].view.visible  # asked first
    click(page.confirms["users"].yes)
    assert "last active admin" in error_text(page.user_actions.message)
    assert services.users.get(admin.id).active is True
    assert audit(services, "user.deactivate") == []


def test_groups_create_members_and_delete(
    services: Services, page: AccessPage, admin: User
) -> None:
    user = add_user(services)
    page.group_name.value, page.group_description.value = "Finance", "Money people"
    click(page.create_group_button)
    group = services.groups.find("Finance")
    assert group.description == "Money people"
    assert audit(services, "group.create")[0].user_id == admin.id

    select(page.groups_table, "name", "Finance")
    page.member_user.value = user.id
    click(page.add_member_button)
    members = services.groups.members(group.id)
    assert [(m.user_id, m.source) for m in members] == [(user.id, MembershipSource.ADMIN)]
    assert list(page.members_table.value["email"]) == [user.email]  # the group stays selected
    assert audit(services, "group.add_member")[0].params == {"user": user.id}

    select(page.members_table, "email", user.email)
    click(page.remove_member_button)
    assert page.confirms["groups"].view.visible  # asked first
    click(page.confirms["groups"].yes)
    assert services.groups.members(group.id) == []
    assert audit(services, "group.remove_member")[0].user_id == admin.id

    select(page.groups_table, "name", "Finance")
    click(page.delete_group_button)
    assert page.confirms["groups"].view.visible
    assert services.groups.by_name("Finance") is not None  # nothing until confirmed
    click(page.confirms["groups"].yes)
    assert services.groups.by_name("Finance") is None
    # the page shows this outcome only: no "Created group Finance" left up beside it
    assert error_text(page.group_actions.message) == "Deleted group Finance."
    shown = [f.message for f in (page.create_group_form, page.member_form)]
    assert [error_text(m) for m in shown] == ["", ""]
    assert "Finance" not in list(page.groups_table.value["name"])
    (row,) = audit(services, "group.delete")
    assert (row.user_id, row.resource) == (admin.id, group.id)


def test_the_page_reads_the_store_as_often_for_many_groups_as_for_few(
    services: Services, page: AccessPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each action reloads the lists: with 200 groups and 1,000 users the memberships
    were read group by group, twice (about 800 reads, 6 s before "Added to ..." showed in
    the browser). They are read at once, so a reload costs as many reads for 30 groups
    as for 2, and still shows every membership."""
    reads = 0
    cursor = services.store.cursor

    def counted() -> Any:
        nonlocal reads
        reads += 1
        return cursor()

    monkeypatch.setattr(services.store, "cursor", counted)

    def reads_of_a_reload() -> int:
        nonlocal reads
        reads = 0
        page.refresh()
        return reads

    made = 0

    def add_groups(count: int) -> None:
        nonlocal made
        for _ in range(count):
            made += 1
            group = services.groups.add(f"team-{made}")
            services.groups.add_member(group.id, add_user(services).id, MembershipSource.ADMIN)

    add_groups(2)
    few = reads_of_a_reload()
    add_groups(28)
    assert reads_of_a_reload() == few
    shown = page.users_table.value.to_dict("records")
    assert sum("team-" in row["groups"] for row in shown) == 30
    select(page.groups_table, "name", "team-29")
    assert len(page.members_table.value) == 1


def test_a_group_removed_in_another_tab_is_said_so_and_dropped_from_the_page(
    services: Services, page: AccessPage
) -> None:
    """Two admins (or a tab and the CLI): the group this page shows was deleted elsewhere.
    Acting on it says so and the page shows what is stored, not the stale row."""
    user = add_user(services)
    services.groups.add("Temp")
    page.refresh()
    select(page.groups_table, "name", "Temp")
    services.groups.delete(services.groups.find("Temp").id)  # the other tab
    page.member_user.value = user.id
    click(page.add_member_button)
    said = error_text(page.member_form.message)
    assert "removed elsewhere" in said and "page now shows what is stored" in said
    assert "Temp" not in list(page.groups_table.value["name"])
    assert "Temp" not in page.grant_group.options


def test_cancelled_delete_keeps_the_group(services: Services, page: AccessPage) -> None:
    services.groups.add("Keepers")
    page.refresh()
    select(page.groups_table, "name", "Keepers")
    click(page.delete_group_button)
    click(page.confirms["groups"].no)
    assert services.groups.by_name("Keepers") is not None
    assert audit(services, "group.delete") == []


@pytest.mark.parametrize(
    ("name", "field", "words"),
    [("Admin", "name", "already exists"), ("bad/name", "name", "not a valid group name")],
)
def test_bad_group_names_are_shown_beside_the_field(
    services: Services, page: AccessPage, name: str, field: str, words: str
) -> None:
    before = len(services.groups.all())
    page.group_name.value = name
    click(page.create_group_button)
    assert words in error_text(page.create_group_form.errors[field])
    assert len(services.groups.all()) == before


def test_system_groups_cannot_be_deleted(services: Services, page: AccessPage) -> None:
    select(page.groups_table, "name", "Admin")
    click(page.delete_group_button)
    click(page.confirms["groups"].yes)
    assert "cannot be deleted" in error_text(page.group_actions.message)
    assert services.groups.get(ADMIN_GROUP_ID).is_system


def test_synced_memberships_are_shown_but_not_removable(
    services: Services, page: AccessPage
) -> None:
    group = services.groups.add("Synced")
    user = add_user(services)
    services.groups.add_member(group.id, user.id, MembershipSource.GOOGLE_SYNC)
    page.refresh()
    select(page.groups_table, "name", "Synced")
    assert page.members_table.value.to_dict("records")[0]["source"] == "google_sync"
    select(page.members_table, "email", user.email)
    click(page.remove_member_button)
    assert "google_sync" in error_text(page.member_form.message)
    assert [m.source for m in services.groups.members(group.id)] == [MembershipSource.GOOGLE_SYNC]
    assert audit(services, "group.remove_member") == []


def test_grants_tree_add_and_remove(services: Services, page: AccessPage, admin: User) -> None:
    for table_id in ("orders", "payroll"):
        services.registry.add(
            TableSpec(id=table_id, source_type="files", source_table=f"{table_id}.csv")
        )
    group = services.groups.add("Analysts")
    page.refresh()
    # The Admin group is offered (it may be granted marketplace plugins), but a table is
    # refused for it: its members use every table anyway.
    assert page.grant_group.options["Admin"] == ADMIN_GROUP_ID
    page.grant_type.value = ResourceType.TABLE.value
    assert page.grant_resource.options == ["orders", "payroll"]  # what exists, to choose from
    assert page.grant_resource.restrict
    page.grant_group.value = ADMIN_GROUP_ID
    page.grant_resource.value = "orders"
    click(page.add_grant_button)
    assert "every table already" in error_text(page.grant_form.errors["resource_id"])
    assert services.grants.all(group_id=ADMIN_GROUP_ID) == []

    page.grant_group.value = group.id
    page.grant_resource.value = "orders"
    click(page.add_grant_button)
    (grant,) = services.grants.all(group_id=group.id)
    assert (grant.resource_type, grant.resource_id, grant.granted_by) == (
        ResourceType.TABLE,
        "orders",
        admin.id,
    )
    shown = page.grants_table.value.to_dict("records")
    assert [(r["group"], r["type"], r["resource"]) for r in shown] == [
        ("Analysts", "Table", "orders")
    ]
    assert shown[0]["granted_by"] == admin.email
    assert page.grants_table.groupby == ["group", "type"]
    assert audit(services, "grant.create")[0].user_id == admin.id

    select(page.grants_table, "resource", "orders")
    click(page.remove_grant_button)
    assert page.confirms["grants"].view.visible  # asked first
    assert services.grants.all(group_id=group.id) != []  # nothing removed yet
    click(page.confirms["grants"].yes)
    assert services.grants.all(group_id=group.id) == []
    (row,) = audit(services, "grant.delete")
    assert (row.user_id, row.params["resource_id"]) == (admin.id, "orders")


def test_granting_a_missing_resource_is_refused_beside_the_field(
    services: Services, page: AccessPage
) -> None:
    group = services.groups.add("Analysts")
    page.refresh()
    page.grant_group.value = group.id
    page.grant_type.value = ResourceType.TABLE.value
    page.grant_resource.value = "no_such_table"
    click(page.add_grant_button)
    assert "no_such_table" in error_text(page.grant_form.errors["resource_id"])
    assert services.grants.all() == []

    page.grant_type.value = ResourceType.MARKETPLACE_PLUGIN.value
    # Plugins are listed from the marketplaces' last good syncs: none synced, none to pick.
    assert page.grant_resource.restrict and page.grant_resource.options == []
    page.grant_resource.value = ""
    click(page.add_grant_button)
    assert "Choose the resource" in error_text(page.grant_form.errors["resource_id"])
    assert services.grants.all() == []


def test_a_signed_out_admin_changes_nothing(
    services: Services, page: AccessPage, ctx: PageContext
) -> None:
    services.web_sessions.sign_out(ctx.session_id)
    page.user_email.value = "late@example.com"
    click(page.add_user_button)
    assert "signed out" in error_text(page.add_user_form.message)
    assert services.users.by_email("late@example.com") is None

    page.group_name.value = "Late"
    click(page.create_group_button)
    assert services.groups.by_name("Late") is None
    assert audit(services, "user.add") == audit(services, "group.create") == []


def test_an_admin_removed_from_admin_changes_nothing(services: Services, admin: User) -> None:
    other = add_user(services, (ADMIN_GROUP_ID,))
    session, _ = services.web_sessions.sign_in(other.id, "token")
    page = AccessPage(PageContext(services, session.id))
    services.groups.remove_member(ADMIN_GROUP_ID, other.id)
    page.group_name.value = "Sneaky"
    click(page.create_group_button)
    assert "Admin group" in error_text(page.create_group_form.message)
    assert services.groups.by_name("Sneaky") is None


def test_the_grant_is_of_what_the_box_shows(services: Services, page: AccessPage) -> None:
    """Picking 'orders' and then retyping the box granted 'orders'; what was typed is what
    is granted (or refused)."""
    group = services.groups.add("Sales EU")
    page.refresh()
    page.grant_group.value = group.id
    page.grant_type.value = ResourceType.TABLE.value
    page.grant_resource.value = "orders"  # picked ...
    page.grant_resource.value_input = "zzz_not_a_table"  # ... then retyped
    click(page.add_grant_button)
    said = error_text(page.grant_form.errors["resource_id"])
    assert "zzz_not_a_table" in said and "orders" not in said
    assert services.grants.all() == []


def test_a_pick_after_typing_grants_the_picked_option(services: Services, page: AccessPage) -> None:
    """Typing 'ord' and picking 'orders' from the list (what the browser sends: the typed
    letters as value_input, then the pick as value) granted 'ord', refused as no table."""
    group = services.groups.add("Pickers")
    services.registry.add(TableSpec(id="orders", source_type="files", source_table="orders.csv"))
    page.refresh()
    page.grant_group.value = group.id
    page.grant_type.value = ResourceType.TABLE.value
    page.grant_resource.value_input = "ord"  # typed ...
    page.grant_resource.value = "orders"  # ... then picked
    click(page.add_grant_button)
    assert not page.grant_form.errors["resource_id"].visible
    assert [g.resource_id for g in services.grants.all()] == ["orders"]


def test_each_confirmation_is_asked_on_the_tab_of_its_button(
    services: Services, page: AccessPage
) -> None:
    """The one confirmation lived on the Groups tab: Deactivate (Users) and Remove grant
    (Grants) asked where no one could see it, so neither could be done. Each question
    now shows on the tab holding the button, and a new one drops any other."""
    user = add_user(services)
    group = services.groups.add("Askers")
    services.registry.add(TableSpec(id="orders", source_type="files", source_table="orders.csv"))
    services.grants.add(group.id, ResourceType.TABLE, "orders", granted_by="test")
    page.refresh()

    def tab_of(widget: Any) -> int:
        tabs = [i for i, tab in enumerate(page.view.objects) if tab.select(lambda o: o is widget)]
        assert len(tabs) == 1
        return tabs[0]

    def shown() -> list[Any]:
        return [c for c in page.confirms.values() if c.view.visible]

    select(page.users_table, "email", user.email)
    click(page.deactivate_button)
    select(page.grants_table, "resource", "orders")
    click(page.remove_grant_button)
    (asked,) = shown()  # the deactivation's question was dropped
    assert tab_of(asked.view) == tab_of(page.remove_grant_button)
    select(page.groups_table, "name", "Askers")
    click(page.delete_group_button)
    (asked,) = shown()
    assert tab_of(asked.view) == tab_of(page.delete_group_button)
    select(page.users_table, "email", user.email)
    click(page.deactivate_button)
    (asked,) = shown()
    assert tab_of(asked.view) == tab_of(page.deactivate_button)
    click(asked.yes)
    assert services.users.get(user.id).active is False
    assert services.groups.by_name("Askers") is not None  # the dropped question did nothing
    # choosing another row withdraws the question about the first one
    other = add_user(services)
    page.refresh()
    select(page.users_table, "email", other.email)
    click(page.deactivate_button)
    assert shown() == [page.confirms["users"]]
    select(page.users_table, "email", user.email)
    assert shown() == [] and services.users.get(other.id).active is True
