"""Access: users, groups and their members, grants (group → resource type → resources).

Every change goes through :mod:`agnes_mcp.access_admin` (what the REST routes call) for
the admin :meth:`PageContext.actor` returns at the moment of the click, so a signed-out
or demoted admin changes nothing. Problems are shown beside the field they are about.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

import pandas as pd
import panel as pn

from agnes_admin.clicks import on_click, submit_on_enter
from agnes_admin.context import PageContext
from agnes_admin.markdown_text import plain
from agnes_admin.pages import Page, register
from agnes_admin.times import NEVER, never_sorted_oldest, shown_time
from agnes_mcp import access_admin
from agnes_mcp.auth.principal import Principal
from agnes_mcp.builtin_groups import EVERYONE_GROUP_ID
from agnes_mcp.errors import (
    GrantNotFound,
    GroupNotFound,
    MembershipNotFound,
    TokenNotFound,
    UserNotFound,
)
from agnes_mcp.resource_types import all_specs, parse_resource_type
from agnes_mcp.store.groups import Membership, MembershipSource
from agnes_sync.errors import AgnesError

T = TypeVar("T")
# Refusals that mean a row the page showed is gone (removed by another admin or the CLI).
GONE_ELSEWHERE = (UserNotFound, GroupNotFound, MembershipNotFound, GrantNotFound, TokenNotFound)
Tone = Literal["success", "warning", "danger", "info"]

USER_COLUMNS = ["id", "email", "name", "active", "last_seen", "groups", "created"]

SYNCED_NOTE = (
    "Memberships from Google sync (source `google_sync`) follow Google Workspace and change "
    "at the next sync; only `admin` memberships can be removed here."
)


def table(columns: list[str], **options: Any) -> pn.widgets.Tabulator:
    """A read-only Tabulator where one row can be selected."""
    settings: dict[str, Any] = {
        "disabled": True,
        "selectable": 1,
        "show_index": False,
        "pagination": "local",
        "page_size": 50,
        "sizing_mode": "stretch_width",
        **options,
    }
    return pn.widgets.Tabulator(pd.DataFrame(columns=columns), **settings)


def choice_box(**options: Any) -> pn.widgets.AutocompleteInput:
    """An autocomplete box whose :func:`shown_choice` is what it shows. Bokeh updates
    ``value_input`` only on typing: picking an option sets ``value`` and leaves
    ``value_input`` at the letters typed before the pick, so it is brought level here."""
    box = pn.widgets.AutocompleteInput(**options)
    box.param.watch(lambda event: setattr(box, "value_input", event.new or ""), "value")
    return box


def shown_choice(box: pn.widgets.AutocompleteInput) -> str:
    """What a :func:`choice_box` shows: the text typed in it since the option picked last
    (a box retyped after a pick granted the picked option, not the shown text), else that
    option."""
    typed = (box.value_input or "").strip()
    return typed if typed and typed != box.value else str(box.value or "")


def selected(tab: pn.widgets.Tabulator) -> dict[str, Any] | None:
    """The selected row as a dict, or None."""
    rows = tab.selected_dataframe
    if rows is None or len(rows) == 0:
        return None
    record: dict[str, Any] = rows.iloc[0].to_dict()
    return record


def set_options(select: pn.widgets.Select, options: dict[str, str]) -> None:
    """New choices for a select, keeping its value when still offered (else the first)."""
    kept = select.value
    values = list(options.values())
    select.param.update(
        options=options, value=kept if kept in values else (values[0] if values else None)
    )


class Form:
    """Widgets with an error line beside each, a form-wide message, and the run of one
    action: re-check the admin, call the service, show what went wrong where."""

    def __init__(self, ctx: PageContext, fields: dict[str, pn.widgets.Widget]) -> None:
        self.ctx = ctx
        self.fields = fields
        self.errors = {
            name: pn.pane.Alert("", alert_type="danger", visible=False, margin=(0, 10))
            for name in fields
        }
        self.message = pn.pane.Alert("", alert_type="danger", visible=False)
        # The page's reload, for a row that was removed elsewhere (another admin's tab,
        # the CLI) since the page showed it: the lists then show what is stored.
        self.reload: Callable[[], None] | None = None
        # The page's other forms: an outcome shown here hides theirs, so the page never
        # shows "Created group X" beside "Deleted group X" (see :func:`one_outcome`).
        self.others: list[Form] = []

    def clear(self) -> None:
        for pane in [*self.errors.values(), self.message]:
            pane.object = ""
            pane.visible = False

    def _quiet_others(self) -> None:
        for form in self.others:
            form.clear()

    def show_error(self, exc: AgnesError) -> None:
        self._quiet_others()
        text = exc.message + (f" {exc.hint}" if exc.hint else "")
        if isinstance(exc, GONE_ELSEWHERE) and self.reload is not None:
            self.reload()
            text = (
                f"{exc.message} It was removed elsewhere since this page showed it; the "
                "page now shows what is stored."
            )
        placed = False
        for problem in exc.details.get("fields", []):
            pane = self.errors.get(str(problem.get("field")))
            if pane is not None:
                pane.object = plain(text)
                pane.visible = True
                placed = True
        if not placed:
            self.say(text, "danger")

    def say(self, text: str, kind: Tone = "success") -> None:
        self._quiet_others()
        self.message.object = plain(text)
        self.message.alert_type = kind
        self.message.visible = True

    def run(self, action: Callable[[Principal], T]) -> T | None:
        """Run ``action`` for the admin acting now; ``None`` (and the error shown) if it
        was refused. Nothing is written before the service's own checks pass."""
        self.clear()
        try:
            return action(self.ctx.actor())
        except AgnesError as exc:
            self.show_error(exc)
            return None

    def layout(self, *extra: Any) -> pn.Column:
        rows = [pn.Row(widget, self.errors[name]) for name, widget in self.fields.items()]
        return pn.Column(*rows, *extra, self.message)


def one_outcome(*forms: Form) -> None:
    """The page shows the outcome of its latest action only: each of ``forms`` hides the
    others' messages when it shows one."""
    for form in forms:
        form.others = [other for other in forms if other is not form]


class Confirm:
    """A second click for destructive actions: ask, then act on what was chosen then."""

    def __init__(self) -> None:
        self.text = pn.pane.Markdown("")
        self.yes = pn.widgets.Button(label="Confirm", color="danger")
        self.no = pn.widgets.Button(label="Cancel")
        self.pending: Callable[[], None] | None = None
        self.view = pn.Row(self.text, self.yes, self.no, visible=False)
        self.yes.on_click(lambda _: self._answer(True))
        self.no.on_click(lambda _: self._answer(False))

    def ask(self, question: str, then: Callable[[], None]) -> None:
        self.text.object = question
        self.pending = then
        self.view.visible = True

    def cancel(self) -> None:
        self.pending = None
        self.view.visible = False

    def _answer(self, yes: bool) -> None:
        then, self.pending = self.pending, None
        self.view.visible = False
        if yes and then is not None:
            then()


class AccessPage:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx

        # --- users ---
        # Last seen: the latest web-session use, token or OAuth use, or pull ('never').
        self.users_table = table(USER_COLUMNS, configuration=never_sorted_oldest("last_seen"))
        # At 1,000 users the list is 20 pages: a user is found by a part of the e-mail or
        # name (Enter, or leaving the box, applies it).
        self.user_filter = pn.widgets.TextInput(
            label="E-mail or name contains", placeholder="e.g. ann@"
        )
        self._people: list[access_admin.UserAccess] = []
        self.user_email = pn.widgets.TextInput(label="E-mail", placeholder="name@example.com")
        self.user_name = pn.widgets.TextInput(label="Name")
        self.user_groups = pn.widgets.MultiChoice(label="Groups")
        self.add_user_button = pn.widgets.Button(label="Add user", color="primary")
        self.add_user_form = Form(
            ctx, {"email": self.user_email, "name": self.user_name, "groups": self.user_groups}
        )
        self.deactivate_button = pn.widgets.Button(label="Deactivate selected user")
        self.activate_button = pn.widgets.Button(label="Activate selected user")
        self.user_actions = Form(ctx, {})
        self.memberships_table = table(["group", "source"], selectable=False)

        # --- groups ---
        self.groups_table = table(["id", "name", "description", "members", "built_in"])
        self.group_name = pn.widgets.TextInput(label="Group name")
        self.group_description = pn.widgets.TextInput(label="Description")
        self.create_group_button = pn.widgets.Button(label="Create group", color="primary")
        self.create_group_form = Form(
            ctx, {"name": self.group_name, "description": self.group_description}
        )
        self.delete_group_button = pn.widgets.Button(label="Delete selected group")
        self.group_actions = Form(ctx, {})
        # A second click asked beside the button that needs it, on that button's tab; a
        # new question drops any other still open, so one pending change at a time.
        self.confirms = {tab: Confirm() for tab in ("users", "groups", "grants")}
        self.members_table = table(["user_id", "email", "source", "added_by", "added"])
        self.member_user = pn.widgets.Select(label="User")
        self.add_member_button = pn.widgets.Button(label="Add to selected group")
        self.remove_member_button = pn.widgets.Button(label="Remove selected member")
        self.member_form = Form(ctx, {"user": self.member_user})

        # --- grants ---
        self.grants_table = table(
            ["grant_id", "group", "type", "resource", "granted_by", "granted"],
            groupby=["group", "type"],
        )
        self.grant_group = pn.widgets.Select(label="Group")
        self.grant_type = pn.widgets.Select(
            label="Resource type", options={s.label: s.type.value for s in all_specs()}
        )
        self.grant_resource = choice_box(
            label="Resource", min_characters=0, case_sensitive=False, search_strategy="includes"
        )
        self.add_grant_button = pn.widgets.Button(label="Grant", color="primary")
        self.remove_grant_button = pn.widgets.Button(label="Remove selected grant")
        self.grant_form = Form(
            ctx,
            {
                "group": self.grant_group,
                "resource_type": self.grant_type,
                "resource_id": self.grant_resource,
            },
        )
        self.grant_actions = Form(ctx, {})
        self._memberships: dict[str, list[access_admin.UserMembership]] = {}
        self._members: dict[str, list[Membership]] = {}
        self._emails: dict[str, str] = {}

        forms = (
            self.add_user_form,
            self.user_actions,
            self.create_group_form,
            self.group_actions,
            self.member_form,
            self.grant_form,
            self.grant_actions,
        )
        for form in forms:
            form.reload = self.refresh
        one_outcome(*forms)
        on_click(self.add_user_button, self.add_user)
        submit_on_enter(self.add_user_button, self.user_email, self.user_name)
        self.deactivate_button.on_click(lambda _: self.set_active(False))
        self.activate_button.on_click(lambda _: self.set_active(True))
        self.users_table.param.watch(lambda _: self._show_memberships(), "selection")
        self.user_filter.param.watch(lambda _: self._show_users(), "value")
        # A question is about the row chosen when it was asked: choosing another row
        # withdraws it, so a Confirm never acts on a row no longer the one shown chosen.
        for tab, chosen in (
            ("users", self.users_table),
            ("groups", self.groups_table),
            ("groups", self.members_table),
            ("grants", self.grants_table),
        ):
            chosen.param.watch(lambda _, tab=tab: self.confirms[tab].cancel(), "selection")
        on_click(self.create_group_button, self.create_group)
        submit_on_enter(self.create_group_button, self.group_name, self.group_description)
        self.delete_group_button.on_click(lambda _: self.delete_group())
        self.groups_table.param.watch(lambda _: self._show_members(), "selection")
        on_click(self.add_member_button, self.add_member)
        self.remove_member_button.on_click(lambda _: self.remove_member())
        self.grant_type.param.watch(lambda _: self._offer_resources(), "value")
        on_click(self.add_grant_button, self.add_grant)
        self.remove_grant_button.on_click(lambda _: self.remove_grant())

        self.refresh()
        self.view = pn.Tabs(
            (
                "Users",
                pn.Column(
                    self.user_filter,
                    self.users_table,
                    pn.Row(self.deactivate_button, self.activate_button),
                    self.confirms["users"].view,
                    self.user_actions.layout(),
                    pn.pane.Markdown("#### Groups of the selected user"),
                    self.memberships_table,
                    pn.pane.Markdown("#### Add a user"),
                    self.add_user_form.layout(self.add_user_button),
                ),
            ),
            (
                "Groups",
                pn.Column(
                    self.groups_table,
                    self.delete_group_button,
                    self.confirms["groups"].view,
                    self.group_actions.layout(),
                    pn.pane.Markdown("#### Members of the selected group"),
                    self.members_table,
                    pn.pane.Markdown(SYNCED_NOTE),
                    self.member_form.layout(
                        pn.Row(self.add_member_button, self.remove_member_button)
                    ),
                    pn.pane.Markdown("#### Create a group"),
                    self.create_group_form.layout(self.create_group_button),
                ),
            ),
            (
                "Grants",
                pn.Column(
                    pn.pane.Markdown(
                        "Members of **Admin** may use every resource; other groups use what "
                        "is granted to them (everyone is in **Everyone**)."
                    ),
                    self.grants_table,
                    self.remove_grant_button,
                    self.confirms["grants"].view,
                    self.grant_actions.layout(),
                    pn.pane.Markdown("#### Grant a resource"),
                    self.grant_form.layout(self.add_grant_button),
                ),
            ),
            dynamic=True,
        )

    def ask(self, tab: str, question: str, then: Callable[[], None]) -> None:
        """Ask ``question`` on ``tab``'s confirmation (beside the button that asked)."""
        for name, confirm in self.confirms.items():
            if name != tab:
                confirm.cancel()
        self.confirms[tab].ask(question, then)

    # --- reading ------------------------------------------------------------------------

    def refresh(self) -> None:
        services = self.ctx.services
        people = access_admin.user_access(services)
        self._emails = {p.user.id: p.user.email for p in people}
        self._people = people
        self._memberships = {p.user.id: p.memberships for p in people}
        self._show_users()

        groups = access_admin.groups_with_members(services)
        self._members = {g.group.id: g.members for g in groups}
        self.groups_table.value = pd.DataFrame(
            [
                {
                    "id": g.group.id,
                    "name": g.group.name,
                    "description": g.group.description,
                    "members": g.group.member_count,
                    "built_in": g.group.is_system,
                }
                for g in groups
            ],
            columns=["id", "name", "description", "members", "built_in"],
        )
        self.groups_table.selection = []
        self._show_members()
        joinable = {g.group.name: g.group.id for g in groups if g.group.id != EVERYONE_GROUP_ID}
        self.user_groups.options = list(joinable)
        set_options(self.member_user, {p.user.email: p.user.id for p in people})
        # The Admin group is offered too: it may be granted marketplace plugins (the store
        # refuses tables and metrics for it, which its members use anyway).
        set_options(self.grant_group, {g.group.name: g.group.id for g in groups})

        rows = [
            {
                "grant_id": grant.id,
                "group": branch.group.name,
                "type": kind.label,
                "resource": grant.resource_id,
                "granted_by": self._who(grant.granted_by),
                "granted": shown_time(grant.granted_at),
            }
            for branch in access_admin.grant_tree(services)
            for kind in branch.kinds
            for grant in kind.grants
        ]
        self.grants_table.value = pd.DataFrame(
            rows, columns=["grant_id", "group", "type", "resource", "granted_by", "granted"]
        )
        self.grants_table.selection = []
        self._offer_resources()

    def _show_users(self) -> None:
        """The users the filter lets through (all when it is empty), none selected."""
        needle = (self.user_filter.value or "").strip().lower()
        self.users_table.value = pd.DataFrame(
            [
                {
                    "id": p.user.id,
                    "email": p.user.email,
                    "name": p.user.name or "",
                    "active": p.user.active,
                    "groups": ", ".join(
                        f"{m.group_name} ({m.source.value})" for m in p.memberships
                    ),
                    "created": shown_time(p.user.created_at),
                    "last_seen": shown_time(p.last_seen_at, never=NEVER),
                }
                for p in self._people
                if not needle or needle in f"{p.user.email}\n{p.user.name or ''}".lower()
            ],
            columns=USER_COLUMNS,
        )
        self.users_table.selection = []
        self._show_memberships()

    def _who(self, user_id: str | None) -> str:
        return self._emails.get(user_id, user_id) if user_id else ""

    def _show_memberships(self) -> None:
        row = selected(self.users_table)
        memberships = self._memberships.get(row["id"], []) if row else []
        self.memberships_table.value = pd.DataFrame(
            [{"group": m.group_name, "source": m.source.value} for m in memberships],
            columns=["group", "source"],
        )

    def _show_members(self) -> None:
        row = selected(self.groups_table)
        members = self._members.get(row["id"], []) if row else []
        self.members_table.value = pd.DataFrame(
            [
                {
                    "user_id": m.user_id,
                    "email": m.email,
                    "source": m.source.value,
                    "added_by": self._who(m.added_by),
                    "added": shown_time(m.added_at),
                }
                for m in members
            ],
            columns=["user_id", "email", "source", "added_by", "added"],
        )
        self.members_table.selection = []

    def _offer_resources(self) -> None:
        kind = parse_resource_type(str(self.grant_type.value))
        ids = access_admin.existing_resource_ids(self.ctx.services, kind)
        self.grant_resource.options = ids or []
        self.grant_resource.restrict = ids is not None
        self.grant_resource.placeholder = (
            "Choose an existing id" if ids is not None else "Type the id"
        )

    # --- users --------------------------------------------------------------------------

    def add_user(self) -> None:
        email, name = self.user_email.value or "", self.user_name.value or ""
        groups = list(self.user_groups.value)
        user = self.add_user_form.run(
            lambda actor: access_admin.add_user(
                self.ctx.services, actor, email, name or None, groups
            )
        )
        if user is not None:
            self.user_email.value = self.user_name.value = ""
            self.user_groups.value = []
            self.refresh()
            self.add_user_form.say(f"Added {user.email}.")

    def set_active(self, active: bool) -> None:
        row = selected(self.users_table)
        if row is None:
            self.user_actions.clear()
            self.user_actions.say("Select a user first.", "warning")
            return
        change = access_admin.activate_user if active else access_admin.deactivate_user

        def apply() -> None:
            user = self.user_actions.run(lambda actor: change(self.ctx.services, actor, row["id"]))
            if user is not None:
                self.refresh()
                verb = "Activated" if active else "Deactivated (sessions ended, tokens refused)"
                self.user_actions.say(f"{verb}: {user.email}.")

        if active:
            apply()
        else:  # it ends the user's sessions and refuses their tokens at once: ask first
            self.ask(
                "users",
                f"Deactivate **{plain(str(row['email']))}**? Their sessions end and their "
                "tokens are refused until they are activated again.",
                then=apply,
            )

    # --- groups -------------------------------------------------------------------------

    def create_group(self) -> None:
        name, text = self.group_name.value or "", self.group_description.value or ""
        group = self.create_group_form.run(
            lambda actor: access_admin.create_group(self.ctx.services, actor, name, text)
        )
        if group is not None:
            self.group_name.value = self.group_description.value = ""
            self.refresh()
            self.create_group_form.say(f"Created group {group.name}.")

    def delete_group(self) -> None:
        row = selected(self.groups_table)
        self.group_actions.clear()
        if row is None:
            self.group_actions.say("Select a group first.", "warning")
            return
        group_id, name = str(row["id"]), str(row["name"])

        def delete() -> None:
            group = self.group_actions.run(
                lambda actor: access_admin.delete_group(self.ctx.services, actor, group_id)
            )
            if group is not None:
                self.refresh()
                self.group_actions.say(f"Deleted group {group.name}.")

        self.ask(
            "groups",
            f"Delete group **{plain(str(name))}** with its memberships and grants?",
            delete,
        )

    def add_member(self) -> None:
        row = selected(self.groups_table)
        if row is None:
            self.member_form.clear()
            self.member_form.say("Select a group first.", "warning")
            return
        group_id, user_id = str(row["id"]), self.member_user.value
        if not user_id:
            self.member_form.clear()
            self.member_form.errors["user"].object = "Choose a user."
            self.member_form.errors["user"].visible = True
            return
        result = self.member_form.run(
            lambda actor: access_admin.add_member(self.ctx.services, actor, group_id, user_id)
        )
        if result is not None:
            self._refresh_keeping_group(group_id)
            self.member_form.say(f"Added to {result.group.name}.")

    def remove_member(self) -> None:
        group_row, member = selected(self.groups_table), selected(self.members_table)
        self.member_form.clear()
        if group_row is None or member is None:
            self.member_form.say("Select a group and one of its members first.", "warning")
            return
        if member["source"] != MembershipSource.ADMIN.value:
            self.member_form.say(
                f"This membership comes from {member['source']}, not an admin: it cannot be "
                "removed here. " + SYNCED_NOTE,
                "warning",
            )
            return
        group_id, user_id = str(group_row["id"]), str(member["user_id"])

        def remove() -> None:
            result = self.member_form.run(
                lambda actor: access_admin.remove_member(
                    self.ctx.services, actor, group_id, user_id
                )
            )
            if result is not None:
                self._refresh_keeping_group(group_id)
                self.member_form.say(f"Removed {member['email']} from {result.group.name}.")

        self.ask(
            "groups",
            f"Remove **{plain(str(member['email']))}** from "
            f"**{plain(str(group_row['name']))}**? They lose what the group is granted.",
            then=remove,
        )

    def _refresh_keeping_group(self, group_id: str) -> None:
        self.refresh()
        ids = list(self.groups_table.value["id"])
        if group_id in ids:
            self.groups_table.selection = [ids.index(group_id)]

    # --- grants -------------------------------------------------------------------------

    def add_grant(self) -> None:
        group_id = str(self.grant_group.value or "")
        kind, resource = str(self.grant_type.value), shown_choice(self.grant_resource)
        if not group_id:
            self.grant_form.clear()
            self.grant_form.errors["group"].object = "Choose a group."
            self.grant_form.errors["group"].visible = True
            return
        grant = self.grant_form.run(
            lambda actor: access_admin.add_grant(self.ctx.services, actor, group_id, kind, resource)
        )
        if grant is not None:
            self.grant_resource.value = ""
            self.refresh()
            self.grant_form.say(
                f"Granted {grant.resource_type.value} '{grant.resource_id}' to {grant.group_name}."
            )

    def remove_grant(self) -> None:
        row = selected(self.grants_table)
        if row is None:
            self.grant_actions.clear()
            self.grant_actions.say("Select a grant first.", "warning")
            return
        grant_id = str(row["grant_id"])

        def remove() -> None:
            grant = self.grant_actions.run(
                lambda actor: access_admin.remove_grant(self.ctx.services, actor, grant_id)
            )
            if grant is not None:
                self.refresh()
                self.grant_actions.say(
                    f"Removed {grant.resource_type.value} '{grant.resource_id}' from "
                    f"{grant.group_name}."
                )

        self.ask(
            "grants",
            f"Remove the grant of **{plain(str(row.get('resource', grant_id)))}** from "
            f"**{plain(str(row.get('group', 'the group')))}**? Its members lose access at once.",
            then=remove,
        )


def build(ctx: PageContext) -> Any:
    return AccessPage(ctx).view


register(Page(slug="access", title="Access", order=30, build=build))
