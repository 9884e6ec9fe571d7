"""Audit log: filter by user, action, outcome and time range; paged in SQL (fast at 100k
rows); selecting a row shows its full parameters."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from typing import Any

import pandas as pd
import panel as pn

from agnes_admin.clicks import submit_on_enter
from agnes_admin.context import PageContext
from agnes_admin.markdown_text import plain
from agnes_admin.pages import Page, register
from agnes_admin.times import shown_time
from agnes_mcp import audit_query
from agnes_mcp.audit_query import audit_entry, audit_facets, audit_filter, audit_page
from agnes_mcp.services import Services
from agnes_mcp.store.audit import AuditFilter
from agnes_sync.errors import AgnesError

COLUMNS = ["id", "at", "email", "action", "resource", "result", "duration_ms", "client_ip"]
ANY = "(any)"
PAGE_SIZE = 50


@dataclass(frozen=True)
class Filters:
    user: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def build(self, services: Services) -> AuditFilter:
        return audit_filter(
            services,
            user_contains=self.user,
            action=self.action,
            outcome=self.outcome,
            since=self.since,
            until=self.until,
        )


class AuditPage:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        # Five filters in one row at widths that fit beside the menu in a 1280 px window
        # (the pickers' own width pushed "Until" off the page).
        self.user = pn.widgets.TextInput(
            label="User", placeholder="part of an e-mail or name", width=200
        )
        self.action = pn.widgets.Select(label="Action", options=[ANY], width=190)
        self.outcome = pn.widgets.Select(label="Outcome", options=[ANY, "ok", "failed"], width=110)
        self.since = pn.widgets.DatetimePicker(label="From (UTC)", value=None, width=185)
        self.until = pn.widgets.DatetimePicker(label="Until (UTC)", value=None, width=185)
        self.apply_button = pn.widgets.Button(label="Apply filters", color="primary")
        self.apply_button.on_click(lambda _: self.apply())
        submit_on_enter(self.apply_button, self.user)
        self.previous = pn.widgets.Button(label="◀ Newer", disabled=True)
        self.next = pn.widgets.Button(label="Older ▶", disabled=True)
        self.previous.on_click(lambda _: self.go(self.page - 1))
        self.next.on_click(lambda _: self.go(self.page + 1))
        self.position = pn.pane.Markdown("")
        self.message = pn.pane.Alert("", alert_type="danger", visible=False)
        self.table = pn.widgets.Tabulator(
            pd.DataFrame(columns=COLUMNS),
            selectable=1,
            disabled=True,
            show_index=False,
            sizing_mode="stretch_width",
        )
        self.table.param.watch(self._on_select, "selection")
        self.details = pn.pane.JSON({}, depth=-1, name="Parameters", sizing_mode="stretch_width")
        self.page = 1
        self.rows: audit_query.AuditPage | None = None
        self._filters_in_force = Filters()
        self._through: int | None = None  # the newest row paged through (Apply: again)
        self._load_facets()
        self.apply()
        self.view = pn.Column(
            pn.Row(self.user, self.action, self.outcome, self.since, self.until),
            self.apply_button,
            self.message,
            pn.Row(self.previous, self.position, self.next),
            self.table,
            pn.pane.Markdown("### Selected row"),
            self.details,
            sizing_mode="stretch_width",
        )

    def _load_facets(self) -> None:
        try:
            facets = audit_facets(self.ctx.services, self.ctx.actor())
        except AgnesError as exc:
            self._error(exc.message)
            return
        # Options as stored now (actions first recorded since the page loaded included),
        # keeping what is chosen.
        chosen_action, chosen_outcome = self.action.value, self.outcome.value
        self.action.options = [ANY, *facets.actions]
        codes = [r for r in facets.results if r != "ok"]
        self.outcome.options = [ANY, "ok", "failed", *codes]
        if chosen_action in self.action.options:
            self.action.value = chosen_action
        if chosen_outcome in self.outcome.options:
            self.outcome.value = chosen_outcome

    def apply(self) -> None:
        """Read the filter widgets and show the first page (bad filters: an error, and the
        filters in force stay); the action and outcome choices are read again."""
        if self.rows is not None:  # not at the page's first load, which just read them
            self._load_facets()
        wanted = Filters(
            user=self.user.value or None,
            action=None if self.action.value == ANY else str(self.action.value),
            outcome=None if self.outcome.value == ANY else str(self.outcome.value),
            since=_utc(self.since.value),
            until=_utc(self.until.value),
        )
        try:
            wanted.build(self.ctx.services)
        except AgnesError as exc:
            self._error(exc.message)
            return
        self._filters_in_force = wanted
        self._through = None  # the first page read pins the rows paged through
        self.go(1)

    def go(self, page: int) -> None:
        """Show ``page`` (from 1) of the rows the filters in force match."""
        try:
            admin = self.ctx.actor()
            where = replace(
                self._filters_in_force.build(self.ctx.services), through_id=self._through
            )
            rows = audit_page(
                self.ctx.services, admin, where, page=max(1, page), page_size=PAGE_SIZE
            )
        except AgnesError as exc:
            self._error(exc.message)
            return
        self.message.visible = False
        if self._through is None and rows.entries:  # newest first: rows up to this one
            self._through = max(e.id for e in rows.entries)
        self.rows = rows
        self.page = rows.page
        self.table.selection = []
        self.details.object = {}
        self.table.value = pd.DataFrame(
            [
                {
                    "id": e.id,
                    "at": shown_time(e.at, seconds=True),
                    "email": e.email or e.user_id,
                    "action": e.action,
                    "resource": e.resource,
                    "result": e.result,
                    "duration_ms": round(e.duration_ms, 1) if e.duration_ms is not None else None,
                    "client_ip": e.client_ip,
                }
                for e in rows.entries
            ],
            columns=COLUMNS,
        )
        counted = f"{rows.total:,} row{'' if rows.total == 1 else 's'}"
        self.position.object = f"Page {rows.page:,} of {rows.pages:,} ({counted})"
        self.previous.disabled = rows.page <= 1
        self.next.disabled = rows.page >= rows.pages

    def _on_select(self, event: Any) -> None:
        if event.new:
            self.show(int(self.table.value.iloc[event.new[0]]["id"]))

    def show(self, entry_id: int) -> None:
        """Show one row in full: every column and its parameters."""
        try:
            row = audit_entry(self.ctx.services, self.ctx.actor(), entry_id)
        except AgnesError as exc:
            self._error(exc.message)
            return
        self.details.object = row.model_dump(mode="json") if row is not None else {}

    def _error(self, text: str) -> None:
        self.message.object = plain(text)
        self.message.visible = True


def _utc(value: datetime | date | None) -> datetime | None:
    """The pickers show UTC wall time (naive values)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.combine(value, time())
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def build(ctx: PageContext) -> pn.viewable.Viewable:
    return AuditPage(ctx).view


register(Page(slug="audit", title="Audit log", order=70, build=build))
