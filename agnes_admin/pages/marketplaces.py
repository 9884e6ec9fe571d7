"""Marketplaces: the git repositories of Claude Code plugins the server syncs, how their
syncs went, a form to add one, Sync (one or all) and Remove (confirmed), and every
plugin with the groups granted it.

Every change goes through :class:`~agnes_mcp.marketplace_admin.MarketplaceAdmin` (what
the REST routes call) for the admin :meth:`PageContext.actor` returns at the click. A
Sync click waits for the background sync off the page threads (never the event loop)
and then shows how it went; so does an Add (it looks the URL's host up, which a slow DNS
can stretch to many seconds). A read token is never typed here: the form takes the
*name* of the server environment variable holding it.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

import pandas as pd
import panel as pn

from agnes_admin.background import in_background
from agnes_admin.clicks import on_click, submit_on_enter
from agnes_admin.context import PageContext
from agnes_admin.forms import ModelForm
from agnes_admin.markdown_text import plain
from agnes_admin.pages import Page, register
from agnes_admin.pages.access import Confirm, Form, table
from agnes_admin.table_fit import keep_in_row
from agnes_admin.times import shown_time
from agnes_mcp.marketplace_admin import MarketplaceAdmin, MarketplaceCreate, MarketplaceView
from agnes_sync.errors import AgnesError

COLUMNS = [
    "slug",
    "name",
    "url",
    "ref",
    "state",
    "last_sync",
    "outcome",
    "error",
    "serving",
    "plugins",
    "token_env",
    "token_set",
]
BUTTONS = {"sync": "Sync", "remove": "Remove"}
PLUGIN_COLUMNS = ["marketplace", "plugin", "version", "description", "grant_id", "groups"]
GRANT_NOTE = (
    "Grant a plugin to a group on the [Access](/admin/access) page: resource type "
    "*Marketplace plugin*, id `<marketplace>/<plugin>` (the grant id below). Everyone gets "
    "the plugins their groups are granted; admins too, with no shortcut."
)


def _row(m: MarketplaceView) -> dict[str, Any]:
    return {
        "slug": m.slug,
        "name": m.name,
        "url": m.url,
        "ref": m.ref or "",
        "state": m.state,
        "last_sync": shown_time(m.last_sync_at, never="never"),
        "outcome": m.last_sync_outcome or "",
        "error": m.last_sync_error or "",
        "serving": (m.good_commit or "")[:12],
        "plugins": m.plugins,
        "token_env": m.token_env or "",
        "token_set": {None: "", True: "yes", False: "NOT SET"}[m.token_env_set],
    }


def _outcome(m: MarketplaceView) -> str:
    if m.last_sync_outcome == "ok":
        return f"'{m.slug}' synced: {(m.good_commit or '')[:12]}, {m.plugins} plugin(s)."
    return f"'{m.slug}' failed: {m.last_sync_error or 'no reason recorded'}"


class MarketplacesPage:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        self.admin = MarketplaceAdmin(ctx.services)
        self._syncing: set[str] = set()  # what a Sync click is under way for ('' = all)
        self._sync_lock = threading.Lock()
        self._adding = False  # an Add is under way (its outcome not shown yet)

        # The Sync and Remove buttons stay in the row; the data's columns fold under it.
        self.table = table(COLUMNS, buttons=BUTTONS, configuration=keep_in_row(*COLUMNS))
        self.table.on_click(self._clicked)
        self.refresh_button = pn.widgets.Button(label="Refresh")
        self.sync_all_button = pn.widgets.Button(label="Sync all", color="primary")
        self.confirm = Confirm()
        self.actions = Form(ctx, {})

        self.form = ModelForm(MarketplaceCreate)
        self.add_button = pn.widgets.Button(label="Add marketplace", color="primary")
        self.added = pn.pane.Alert("", alert_type="success", visible=False)

        self.plugins_table = table(PLUGIN_COLUMNS, selectable=False)

        self.refresh_button.on_click(lambda _: self.refresh())
        self.sync_all_button.on_click(lambda _: self.sync(None))
        on_click(self.add_button, self.add)
        submit_on_enter(self.add_button, *(field.widget for field in self.form.fields.values()))
        self.refresh()
        self.view = pn.Column(
            pn.pane.Markdown(
                "Git repositories in Claude Code's marketplace format. Each is synced on a "
                "schedule and on demand, in the background; a failed sync keeps the last good "
                "plugins served."
            ),
            self.table,
            pn.Row(self.refresh_button, self.sync_all_button),
            self.confirm.view,
            self.actions.layout(),
            pn.pane.Markdown("#### Add a marketplace"),
            self.form.view,
            self.add_button,
            self.added,
            pn.pane.Markdown("#### Plugins"),
            pn.pane.Markdown(GRANT_NOTE),
            self.plugins_table,
            sizing_mode="stretch_width",
        )

    # --- reading ------------------------------------------------------------------------

    def refresh(self) -> None:
        try:
            marketplaces = self.admin.views()
            plugins = self.admin.plugins()
        except AgnesError as exc:
            self.actions.show_error(exc)
            return
        self.table.value = pd.DataFrame([_row(m) for m in marketplaces], columns=COLUMNS)
        self.plugins_table.value = pd.DataFrame(
            [{**p.model_dump(), "groups": ", ".join(p.groups)} for p in plugins],
            columns=PLUGIN_COLUMNS,
        )

    def _clicked(self, event: Any) -> None:
        """A click in the table: its Sync or Remove button, for that row's marketplace."""
        if event.column not in BUTTONS:
            return
        slug = str(self.table.value.iloc[event.row]["slug"])
        if event.column == "sync":
            self.sync(slug)
        else:
            self.ask_remove(slug)

    # --- changes ------------------------------------------------------------------------

    def sync(self, slug: str | None) -> None:
        """Queue a sync of ``slug`` (or all); its outcome shows when it is done (waited for
        in the background: never on the page threads every admin shares). Until then the
        same button starts nothing more: a double click queued and audited it twice."""
        key = slug or ""
        with self._sync_lock:
            if key in self._syncing:
                return
            self._syncing.add(key)
        queued = self.actions.run(lambda actor: self.admin.sync(actor, slug).queued)
        self.refresh()
        if not queued:
            self._done_syncing(key)
            if queued is not None:
                self.actions.say("No marketplaces are registered.", "info")
            return
        self.actions.say(
            f"Syncing {', '.join(queued)}; the outcome shows here when it is done.", "info"
        )
        in_background(lambda: self.admin.wait(queued), lambda done: self._synced(done, key))

    def _done_syncing(self, key: str) -> None:
        with self._sync_lock:
            self._syncing.discard(key)

    def _synced(self, finished: Future[list[MarketplaceView]], key: str) -> None:
        self._done_syncing(key)
        self.refresh()
        try:
            done = finished.result()
        except AgnesError as exc:
            self.actions.show_error(exc)
            return
        failed = any(m.last_sync_outcome != "ok" for m in done)
        self.actions.say(" ".join(_outcome(m) for m in done), "danger" if failed else "success")

    def ask_remove(self, slug: str) -> None:
        self.actions.clear()
        count = sum(1 for p in self.admin.plugins() if p.marketplace == slug)

        def remove() -> None:
            removed = self.actions.run(lambda actor: self.admin.remove(actor, slug))
            self.refresh()
            if removed is not None:
                self.actions.say(
                    f"Removed marketplace '{removed.deleted}': {removed.plugins} plugin(s) no "
                    f"longer served, {removed.grants} grant(s) removed."
                )

        self.confirm.ask(
            f"Remove marketplace '{slug}'? Its {count} plugin(s) stop being served and every "
            "grant of them is removed.",
            then=remove,
        )

    def add(self) -> None:
        """Add what the form says, off the page threads (the URL's host is looked up, and
        a slow DNS held a page thread every admin shares for as long). Until the outcome
        shows, the button adds nothing more (a double click added it, then said it
        already existed)."""
        with self._sync_lock:
            if self._adding:
                return
            self._adding = True
        self.added.visible = False
        body = self.form.validate()
        if not isinstance(body, MarketplaceCreate):
            self._adding = False
            return
        self.add_button.disabled = True
        in_background(
            lambda: self.admin.add(self.ctx.actor(), body),
            lambda finished: self._added(body, finished),
        )

    def _added(self, body: MarketplaceCreate, finished: Future[MarketplaceView]) -> None:
        """The outcome of an Add, on the page: problems beside their field, or the line
        saying it was added (and, when it syncs at once, how that went, later)."""
        with self._sync_lock:
            self._adding = False
        self.add_button.disabled = False
        try:
            added = finished.result()
        except AgnesError as exc:
            text = exc.message + (f" {exc.hint}" if exc.hint else "")
            placed = False
            for problem in exc.details.get("fields", []):
                placed = self.form.show_error(str(problem.get("field")), text) or placed
            if not placed:
                self.form.show_error(None, text)
            return
        self.form.set_values({name: None for name in self.form.fields if name != "sync"})
        self.refresh()
        note = ""
        if added.token_env and not added.token_env_set:
            note = f" Note: {added.token_env} is not set in the server's environment."
        then = (
            "Its first sync is under way; the outcome shows here when it is done."
            if body.sync
            else "Press its Sync button when ready."
        )
        self.added.object = plain(f"Added marketplace '{added.slug}'. {then}{note}")
        self.added.alert_type = "success"
        self.added.visible = True
        if body.sync:  # waited for off the page threads, as a Sync click is
            in_background(
                lambda: self.admin.wait([added.slug]),
                lambda finished: self._first_synced(
                    f"Added marketplace '{added.slug}'.{note}", finished
                ),
            )

    def _first_synced(self, added: str, finished: Future[list[MarketplaceView]]) -> None:
        """How the first sync of a marketplace just added went, under the "Added" line."""
        self.refresh()
        try:
            done = finished.result()
        except AgnesError as exc:
            self.added.object = plain(f"{added} {exc.message}")
            self.added.alert_type = "danger"
            return
        failed = any(m.last_sync_outcome != "ok" for m in done)
        self.added.object = plain(f"{added} " + " ".join(_outcome(m) for m in done))
        self.added.alert_type = "danger" if failed else "success"


def build(ctx: PageContext) -> Any:
    return MarketplacesPage(ctx).view


register(Page(slug="marketplaces", title="Marketplaces", order=45, build=build))
