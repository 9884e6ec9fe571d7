"""Tokens: every personal access token, filters, create for a user, revoke; and every
OAuth grant (an MCP client a person allowed to act for them), filters, revoke.

A created token's raw value is shown once, in a read-only field with a copy button; it
is cleared at the next action on the page that succeeds (a refused create leaves it) and
never logged or stored (the store keeps only its hash). PATs and OAuth grants work side
by side: revoking one touches no other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import panel as pn

from agnes_admin.clicks import on_click, submit_on_enter
from agnes_admin.context import PageContext
from agnes_admin.markdown_text import plain
from agnes_admin.pages import Page, register
from agnes_admin.pages.access import Confirm, Form, one_outcome, selected, set_options, table
from agnes_admin.times import shown_time
from agnes_mcp import access_admin, oauth_admin
from agnes_mcp.auth.principal import TokenScope
from agnes_mcp.store.ids import utcnow
from agnes_mcp.store.tokens import TokenInfo

ALL = ""
OWNER_DEACTIVATED = "owner deactivated"
STATUSES = {
    "All": ALL,
    "Active": "active",
    "Revoked": "revoked",
    "Expired": "expired",
    "Owner deactivated": OWNER_DEACTIVATED,
}
# The status next to the name: a table too wide for the page folds its rightmost columns
# under each row first (table_fit), and whether a token works is what an admin looks for.
COLUMNS = [
    "token_id",
    "owner",
    "name",
    "status",
    "prefix",
    "scopes",
    "created",
    "last_used",
    "last_used_ip",
    "expires",
    "revoked",
]
COPY_JS = "navigator.clipboard.writeText(field.value)"
GRANT_STATUSES = {"All": ALL, "Active": "active", "Revoked": "revoked"}
GRANT_COLUMNS = ["grant_id", "user", "client", "status", "created", "last_used", "revoked", "why"]


def status_of(token: TokenInfo, now: datetime, inactive: frozenset[str] = frozenset()) -> str:
    """What the token does now: a token of a deactivated user is refused like a revoked
    one (``inactive``: the ids of deactivated users)."""
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    if token.user_id in inactive:
        return OWNER_DEACTIVATED
    return "active"


class TokensPage:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx

        self.owner_filter = pn.widgets.Select(label="Owner")
        self.status_filter = pn.widgets.Select(label="Status", options=STATUSES, value=ALL)
        self.name_filter = pn.widgets.TextInput(label="Name contains")
        self.table = table(COLUMNS, hidden_columns=["token_id"])

        self.owner = pn.widgets.Select(label="For user")
        self.name = pn.widgets.TextInput(label="Name", placeholder="What the token is for")
        self.scopes = pn.widgets.CheckBoxGroup(
            label="Scopes", options=[s.value for s in TokenScope], value=[TokenScope.DATA.value]
        )
        # No start/end on the widget: the browser snapped an out-of-range entry back to 90
        # without a word; the service refuses it beside the field instead.
        self.expires_in_days = pn.widgets.IntInput(label="Expires in days (empty: never)", value=90)
        self.create_button = pn.widgets.Button(label="Create token", color="primary")
        self.create_form = Form(
            ctx,
            {
                "user": self.owner,
                "name": self.name,
                "scopes": self.scopes,
                "expires_in_days": self.expires_in_days,
            },
        )
        self.raw_token = pn.widgets.TextInput(label="The new token (shown once)", disabled=True)
        self.copy_button = pn.widgets.Button(label="Copy to clipboard")
        self.copy_button.js_on_click(args={"field": self.raw_token}, code=COPY_JS)
        self.created = pn.Column(
            pn.pane.Alert("Copy the token now: it is shown only this once.", alert_type="warning"),
            pn.Row(self.raw_token, self.copy_button),
            visible=False,
        )

        self.revoke_button = pn.widgets.Button(label="Revoke selected token")
        self.confirm = Confirm()
        self.actions = Form(ctx, {})
        self.actions.reload = self.create_form.reload = self.refresh

        for widget in (self.owner_filter, self.status_filter, self.name_filter):
            widget.param.watch(lambda _: self.show(), "value")
        on_click(self.create_button, self.create)
        submit_on_enter(self.create_button, self.name)
        self.revoke_button.on_click(lambda _: self.revoke())

        self.refresh()
        self.oauth = OAuthGrantsSection(ctx)
        one_outcome(self.create_form, self.actions, self.oauth.actions)
        self.view = pn.Column(
            pn.Row(self.owner_filter, self.status_filter, self.name_filter),
            self.table,
            self.revoke_button,
            self.confirm.view,
            self.actions.layout(),
            pn.pane.Markdown("#### Create a token"),
            self.create_form.layout(self.create_button),
            self.created,
            self.oauth.view,
            sizing_mode="stretch_width",
        )

    # --- reading ------------------------------------------------------------------------

    def refresh(self) -> None:
        services = self.ctx.services
        self._tokens = access_admin.all_tokens(services)
        users = services.users.all()
        self._inactive = frozenset(u.id for u in users if not u.active)
        set_options(self.owner, {u.email: u.id for u in users if u.active})
        set_options(self.owner_filter, {"All owners": ALL, **{u.email: u.id for u in users}})
        self.show()

    def show(self) -> None:
        """Show the tokens the filters let through."""
        self._forget_raw()
        now = utcnow()
        owner, status = self.owner_filter.value, self.status_filter.value
        needle = (self.name_filter.value or "").strip().lower()
        rows = [
            {
                "token_id": t.id,
                "owner": t.user_email or t.user_id,
                "name": t.name,
                "prefix": t.prefix,
                "scopes": ", ".join(t.scopes),
                "created": shown_time(t.created_at),
                "last_used": shown_time(t.last_used_at),
                "last_used_ip": t.last_used_ip or "",
                "expires": shown_time(t.expires_at, never="never"),
                "revoked": shown_time(t.revoked_at),
                "status": status_of(t, now, self._inactive),
            }
            for t in self._tokens
            if (not owner or t.user_id == owner)
            and (not status or status_of(t, now, self._inactive) == status)
            and (not needle or needle in t.name.lower())
        ]
        self.table.value = pd.DataFrame(rows, columns=COLUMNS)
        self.table.selection = []

    def _forget_raw(self) -> None:
        self.raw_token.value = ""
        self.created.visible = False

    # --- changes ------------------------------------------------------------------------

    def create(self) -> None:
        """Create the token the form describes. A click while one is being created is
        dropped (:func:`on_click`: a double click makes one token, not a second no one is
        shown), and a refused create leaves the token shown before: it is shown only once."""
        owner = str(self.owner.value or "")
        name, scopes = self.name.value or "", list(self.scopes.value)
        days = self.expires_in_days.value
        if not owner:
            self.create_form.clear()
            self.create_form.errors["user"].object = "Choose the user the token is for."
            self.create_form.errors["user"].visible = True
            return
        made = self.create_form.run(
            lambda actor: access_admin.create_token(
                self.ctx.services,
                actor,
                name,
                user=owner,
                scopes=scopes,
                expires_in_days=days,
            )
        )
        if made is None:
            return
        info, raw = made
        self.name.value = ""
        self.refresh()  # clears the field, so it is filled after
        self.raw_token.value = raw
        self.created.visible = True
        self.create_form.say(f"Created token '{info.name}' ({info.prefix}) for {info.user_email}.")

    def revoke(self) -> None:
        self._forget_raw()
        row = selected(self.table)
        self.actions.clear()
        if row is None:
            self.actions.say("Select a token first.", "warning")
            return
        token_id, label = str(row["token_id"]), f"'{row['name']}' of {row['owner']}"
        shown = plain(label)  # a name is read as typed (a*b* is no emphasis)

        def revoke() -> None:
            info = self.actions.run(
                lambda actor: access_admin.revoke_token(self.ctx.services, actor, token_id)
            )
            if info is None:
                return
            self.refresh()
            if info.already_revoked:
                self.actions.say(
                    f"Token '{info.name}' ({info.prefix}) was already revoked, at "
                    f"{shown_time(info.revoked_at)}; nothing changed.",
                    "info",
                )
            else:
                self.actions.say(f"Revoked token '{info.name}' ({info.prefix}).")

        self.confirm.ask(f"Revoke token {shown}? Programs using it stop working.", then=revoke)


class OAuthGrantsSection:
    """The OAuth grants of every user: who allowed which client, when, last use, revoke."""

    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        self.user_filter = pn.widgets.Select(label="User")
        self.status_filter = pn.widgets.Select(
            label="Grant status", options=GRANT_STATUSES, value=ALL
        )
        self.table = table(GRANT_COLUMNS, hidden_columns=["grant_id"])
        self.revoke_button = pn.widgets.Button(label="Revoke selected grant")
        self.confirm = Confirm()
        self.actions = Form(ctx, {})
        for widget in (self.user_filter, self.status_filter):
            widget.param.watch(lambda _: self.show(), "value")
        self.revoke_button.on_click(lambda _: self.revoke())
        self.refresh()
        self.view = pn.Column(
            pn.pane.Markdown(
                "#### OAuth grants\n"
                "MCP clients people allowed to act for them by signing in (OAuth). Revoking a "
                "grant signs that client out at once; personal access tokens are not touched."
            ),
            pn.Row(self.user_filter, self.status_filter),
            self.table,
            self.revoke_button,
            self.confirm.view,
            self.actions.layout(),
            sizing_mode="stretch_width",
        )

    def refresh(self) -> None:
        services = self.ctx.services
        listed = self.actions.run(lambda actor: oauth_admin.list_grants(services, actor))
        self._grants = listed or []
        users = services.users.all()
        set_options(self.user_filter, {"All users": ALL, **{u.email: u.id for u in users}})
        self.show()

    def show(self) -> None:
        user, status = self.user_filter.value, self.status_filter.value
        rows = [
            {
                "grant_id": g.id,
                "user": g.user_email or g.user_id,
                "client": g.client_name,
                "created": shown_time(g.created_at),
                "last_used": shown_time(g.last_used_at, never="never"),
                "status": g.status,
                "revoked": shown_time(g.revoked_at),
                "why": g.revoked_why or "",
            }
            for g in self._grants
            if (not user or g.user_id == user) and (not status or g.status == status)
        ]
        self.table.value = pd.DataFrame(rows, columns=GRANT_COLUMNS)
        self.table.selection = []

    def revoke(self) -> None:
        row = selected(self.table)
        self.actions.clear()
        if row is None:
            self.actions.say("Select a grant first.", "warning")
            return
        grant_id, label = str(row["grant_id"]), f"'{row['client']}' for {row['user']}"
        shown = plain(label)

        def revoke() -> None:
            grant = self.actions.run(
                lambda actor: oauth_admin.revoke_as_admin(self.ctx.services, actor, grant_id)
            )
            if grant is None:
                return
            self.refresh()
            if grant.already_revoked:
                self.actions.say(
                    f"The OAuth grant of {label} was already revoked, at "
                    f"{shown_time(grant.revoked_at)}; nothing changed.",
                    "info",
                )
            else:
                self.actions.say(f"Revoked the OAuth grant of {label}.")

        self.confirm.ask(
            f"Revoke the OAuth grant of {shown}? The client is signed out at once.", then=revoke
        )


def build(ctx: PageContext) -> Any:
    return TokensPage(ctx).view


register(Page(slug="tokens", title="Tokens", order=40, build=build))
