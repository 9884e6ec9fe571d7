"""The Tables page: the registry, registering a table from a source's list, editing,
unregistering and syncing one, and per table its sync history, profile and grants.

Every read and change goes through :class:`~agnes_mcp.registry_admin.RegistryAdmin`, the
same operations the REST API runs; every change first re-checks the admin's session
(:meth:`PageContext.actor`) and is audit-logged under that admin. The forms are derived
from :class:`~agnes_sync.table_spec.TableSpec` and the source connector's
``TableOptions`` model (:mod:`agnes_admin.forms`), so a new connector option appears here
without a change to this page.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import suppress
from typing import Any, Literal

import pandas as pd
import panel as pn
from pydantic import BaseModel

from agnes_admin.background import in_background
from agnes_admin.clicks import on_click
from agnes_admin.context import PageContext
from agnes_admin.forms import ModelForm
from agnes_admin.markdown_text import plain
from agnes_admin.pages import Page, register, whole_numbers
from agnes_admin.sync_timeline import HISTORY_RUNS, history_figure
from agnes_admin.times import shown_time
from agnes_mcp.auth.principal import Principal
from agnes_mcp.errors import AuthenticationError, PermissionDenied, TableNotRegistered
from agnes_mcp.registry_admin import (
    NEVER_SYNCED,
    Registered,
    RegistryAdmin,
    RegistryEntry,
    SourceTableInfo,
)
from agnes_mcp.sync_service import SyncResult
from agnes_sync.connector import NoOptions
from agnes_sync.errors import AgnesError
from agnes_sync.table_spec import QueryMode, TableSpec

logger = logging.getLogger("agnes.admin")

ALL = "(all)"
STATUSES = [NEVER_SYNCED, "running", "ok", "error"]
PAGE_SIZE = 25
FILTER_WIDTH = 240  # px: Panel's default (300) put the fourth filter past the window
REGISTRY_COLUMNS = [
    "id",
    "name",
    "source",
    "mode",
    "strategy",
    "schedule",
    "status",
    "last_success",
    "rows",
    "size_bytes",
    "next_run",
]
MULTILINE = ("description", "source_query")
REGISTER_TAB = 1  # the index of "Register a table" in TablesPage.tabs


class TablesPage:
    """The page's widgets as attributes (tests drive them without a browser)."""

    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        self.admin = RegistryAdmin(ctx.services)
        self.source_names = [s.name for s in self.admin.sources()]
        self.selected: str | None = None
        self.message = pn.pane.Alert("", alert_type="info", visible=False)

        # --- the registry ---
        self.source_filter = pn.widgets.Select(label="Source", options=[ALL, *self.source_names])
        self.mode_filter = pn.widgets.Select(label="Mode", options=[ALL, *map(str, QueryMode)])
        self.status_filter = pn.widgets.Select(label="Status", options=[ALL, *STATUSES])
        # At 1,000 tables the registry is 40 pages: a table is found by a part of its id
        # or name (Enter, or leaving the box, applies it), as tokens are found by name.
        self.text_filter = pn.widgets.TextInput(
            label="Id or name contains", placeholder="e.g. orders"
        )
        self.registry = pn.widgets.Tabulator(
            _registry_frame([]),
            pagination="remote",
            page_size=PAGE_SIZE,
            selectable=1,
            disabled=True,
            show_index=False,
            sizing_mode="stretch_width",
        )
        for widget in (self.source_filter, self.mode_filter, self.status_filter, self.text_filter):
            widget.width = FILTER_WIDTH  # four side by side fit a 1280 px window
            widget.param.watch(lambda _: self.refresh(), "value")
        self.registry.param.watch(self._on_select, "selection")

        # --- the selected table ---
        self.title = pn.pane.Markdown("Select a table to see its history, profile and grants.")
        self.sync_button = pn.widgets.Button(label="Sync now", color="primary")
        self.unregister_button = pn.widgets.Button(label="Unregister", color="danger")
        self.confirm_unregister = pn.widgets.Button(label="Yes, unregister", color="danger")
        self.cancel_unregister = pn.widgets.Button(label="Cancel")
        self.confirm_text = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.confirmation = pn.Row(
            self.confirm_text,
            self.confirm_unregister,
            self.cancel_unregister,
            visible=False,
        )
        self.sync_button.on_click(lambda _: self.sync_now())
        self.unregister_button.on_click(lambda _: self._ask_unregister())
        on_click(self.confirm_unregister, self.unregister)  # a double click acts once
        self.cancel_unregister.on_click(lambda _: setattr(self.confirmation, "visible", False))
        self.history_plot = pn.pane.Bokeh(None, sizing_mode="stretch_width")
        self.profile_table = pn.widgets.Tabulator(
            pd.DataFrame(), disabled=True, show_index=False, sizing_mode="stretch_width"
        )
        self.grants_table = pn.widgets.Tabulator(
            pd.DataFrame(), disabled=True, show_index=False, sizing_mode="stretch_width"
        )
        self.edit_form: ModelForm | None = None
        self.edit_options: ModelForm | None = None
        self.edit_baseline: dict[str, Any] = {}
        self.edit_for: str | None = None  # the table the Edit form was opened for
        self.editing = False  # a dry run or save is being checked against the source
        self._reloading = False
        self._syncing: set[str] = set()  # tables whose Sync now is under way from here
        self._sync_lock = threading.Lock()
        self.edit_area = pn.Column(sizing_mode="stretch_width")
        self.edit_dry_run = pn.widgets.Button(label="Dry run")
        self.edit_save = pn.widgets.Button(label="Save changes", color="primary")
        self.edit_result = pn.pane.Markdown("")
        self.edit_dry_run.on_click(lambda _: self.save_edit(dry_run=True))
        on_click(self.edit_save, lambda: self.save_edit(dry_run=False))
        self.details = pn.Column(
            pn.Row(self.sync_button, self.unregister_button),
            self.confirmation,
            pn.Tabs(
                ("Sync history", self.history_plot),
                ("Profile", self.profile_table),
                ("Granted to", self.grants_table),
                (
                    "Edit",
                    pn.Column(
                        self.edit_area,
                        pn.Row(self.edit_dry_run, self.edit_save),
                        self.edit_result,
                    ),
                ),
                dynamic=False,
            ),
            visible=False,
            sizing_mode="stretch_width",
        )

        # --- registering: built when its tab is first opened (register_tab) ---
        self._register: RegisterTab | None = None
        self.register_area = pn.Column(sizing_mode="stretch_width")

        self.tabs = pn.Tabs(
            (
                "Registry",
                pn.Column(
                    pn.Row(
                        self.source_filter, self.mode_filter, self.status_filter, self.text_filter
                    ),
                    self.registry,
                    self.title,
                    self.details,
                    sizing_mode="stretch_width",
                ),
            ),
            ("Register a table", self.register_area),
            dynamic=True,  # a tab's widgets reach the browser when it is opened
        )
        self.tabs.param.watch(self._on_tab, "active")
        self.view = pn.Column(self.message, self.tabs, sizing_mode="stretch_width")
        self.refresh()

    # --- the registry -----------------------------------------------------------------

    def refresh(self) -> None:
        """Reload the registry with the current filters, keeping the selection."""
        entries = self.admin.entries(
            source=_chosen(self.source_filter.value),
            mode=_chosen(self.mode_filter.value),
            status=_chosen(self.status_filter.value),
        )
        needle = (self.text_filter.value or "").strip().lower()
        if needle:
            entries = [e for e in entries if needle in f"{e.id}\n{e.name or ''}".lower()]
        frame = _registry_frame(entries)
        selected, ids = self.selected, list(frame["id"])
        keep = [ids.index(selected)] if selected in ids else []
        self._reloading = True  # the selection's changes below are not the admin's
        try:
            self.registry.value = frame  # Tabulator clears its selection on new data
            self.registry.selection = keep
        finally:
            self._reloading = False
        self.show_table(selected if keep else None)

    def _on_select(self, event: Any) -> None:
        if self._reloading:
            return
        rows = event.new
        frame = self.registry.value
        table_id = str(frame.iloc[rows[0]]["id"]) if rows and len(frame) > rows[0] else None
        self.show_table(table_id)

    def select(self, table_id: str) -> None:
        """Select ``table_id`` in the registry (it must be listed under the filters)."""
        ids = list(self.registry.value["id"])
        self.registry.selection = [ids.index(table_id)]

    def show_table(self, table_id: str | None) -> None:
        """Show ``table_id``'s details. The table already shown (the registry reloaded
        after a filter, a sync's outcome or a registration) keeps its Edit form as typed
        and any question open; another table gets a form read from what is stored."""
        same = table_id is not None and table_id == self.edit_for
        self.selected = table_id
        if not same:
            self.confirmation.visible = False
            self.edit_result.object = ""
        if table_id is None:
            self.edit_for = None
            self.details.visible = False
            self.title.object = "Select a table to see its history, profile and grants."
            return
        try:
            table = self.admin.get(table_id)
        except TableNotRegistered as exc:  # unregistered meanwhile (another admin, the CLI)
            self._say(f"{exc.message} It was unregistered meanwhile.", "danger")
            self.show_table(None)
            return
        self.title.object = f"### {table.name or table.id}\n{table.description}"
        runs = self.admin.history(table_id, limit=HISTORY_RUNS + 1)  # one more: were any cut?
        self.history_plot.object = history_figure(
            runs[:HISTORY_RUNS], more=len(runs) > HISTORY_RUNS
        )
        profile = self.admin.profile(table_id)
        self.profile_table.value = pd.DataFrame(
            profile.columns if profile else [],
            columns=["name", "type", "null_share", "distinct_estimate", "min", "max"],
        )
        grants = self.admin.grants_of(table_id)
        # Who granted it by e-mail, as the Access page writes it (the bare id said nothing).
        emails = {u.id: u.email for u in self.ctx.services.users.all()} if grants else {}
        self.grants_table.value = pd.DataFrame(
            [
                {
                    "group": g.group_name,
                    "granted_by": emails.get(g.granted_by, g.granted_by) if g.granted_by else "",
                    "granted_at": shown_time(g.granted_at),
                }
                for g in grants
            ],
            columns=["group", "granted_by", "granted_at"],
        )
        if not same:
            self._open_edit(table)
        self.details.visible = True

    def _open_edit(self, table: TableSpec) -> None:
        """The Edit form, filled with what is stored for ``table`` now."""
        table_id = table.id
        self.edit_form = ModelForm(
            TableSpec,
            exclude=("source_options",),
            choices={"source_type": self.source_names},
            multiline=MULTILINE,
            disabled=("id",),
            values=table.model_dump(),
        )
        self.edit_options = self._options_form(table.source_type, table.source_options)
        self.edit_baseline = self._stored(table_id)  # what this form was opened with
        self.edit_for = table_id
        self.edit_form.watch("source_type", self._on_edit_source)
        self.edit_area.objects = [
            pn.Row(self.edit_form.view, self.edit_options.view, sizing_mode="stretch_width")
        ]

    # --- changes to the selected table ------------------------------------------------

    def _stored(self, table_id: str) -> dict[str, Any]:
        return self.admin.get(table_id).model_dump(exclude={"registered_by", "registered_at"})

    def sync_now(self) -> None:
        table_id = self.selected
        if table_id is None:
            return

        with self._sync_lock:  # a double click queued a second sync, audited twice
            if table_id in self._syncing:
                return
            self._syncing.add(table_id)
        acting: list[Principal] = []

        def start(actor: Principal) -> str:
            acting.append(actor)
            return f"Syncing '{table_id}'; the outcome shows here when it is done."

        if not self._act(start):
            self._done_syncing(table_id)
        else:
            in_background(
                lambda: self.admin.trigger(acting[0], table_id, wait=True).results[0],
                lambda finished: self._synced(table_id, finished),
            )

    def _done_syncing(self, table_id: str) -> None:
        with self._sync_lock:
            self._syncing.discard(table_id)

    def _synced(self, table_id: str, finished: Future[SyncResult]) -> None:
        """How the sync went (run off the page threads every admin shares)."""
        self._done_syncing(table_id)
        try:
            result = finished.result()
        except AgnesError as exc:
            self._say(f"The sync of '{table_id}' was not run: {_text(exc)}", "danger")
            if isinstance(exc, TableNotRegistered):  # unregistered meanwhile: off the list
                self.refresh()
            return
        if result.status == "ok":
            said = f"Synced '{table_id}': {result.rows:,} rows in {result.seconds:.2f} s."
            self._say(said, "success")
        else:
            error = result.error or {}
            self._say(f"The sync of '{table_id}' failed: {error.get('message', '')}", "danger")
        self.refresh()

    def _ask_unregister(self) -> None:
        if self.selected is None:
            return
        self.confirm_text.object = (
            f"Unregister **{self.selected}**? Its data, profile and grants are dropped."
        )
        self.confirmation.visible = True

    def unregister(self) -> None:
        table_id = self.selected
        self.confirmation.visible = False
        if table_id is None:
            return

        def run(actor: Principal) -> str:
            self.admin.unregister(actor, table_id)
            self.selected = None
            return f"Unregistered '{table_id}'."

        if self._act(run):
            self.refresh()
            self.show_table(None)

    def save_edit(self, *, dry_run: bool) -> None:
        table_id, form, options = self.selected, self.edit_form, self.edit_options
        if table_id is None or form is None or options is None:
            return
        if self.editing:  # the source is still being asked about the last click
            return
        self.edit_result.object = ""
        spec = _validated(form, options, self._say)
        if spec is None:
            return
        wanted = spec.model_dump()
        if not wanted["name"]:
            wanted["name"] = table_id
        # What this admin changed: the fields that differ from what the form was opened
        # with. Compared with what is stored now instead, a field another tab changed
        # meanwhile read as a change here, and was silently put back.
        baseline = self.edit_baseline
        try:
            current = self._stored(table_id)
        except TableNotRegistered as exc:
            self._say(f"{exc.message} It was unregistered meanwhile.", "danger")
            return
        for view in (baseline, current):
            if wanted["source_type"] == view["source_type"]:  # stored options, as the form
                with suppress(ValueError):  # reads them (defaults left out)
                    stored = options.model.model_validate(view["source_options"])
                    view["source_options"] = stored.model_dump(exclude_defaults=True)
        changes = {k: v for k, v in wanted.items() if k != "id" and v != baseline.get(k)}
        clashes = sorted(k for k in changes if current.get(k) != baseline.get(k))
        if clashes:
            self._say(
                f"'{table_id}' was changed elsewhere since you opened it ({', '.join(clashes)}); "
                "select it again to see what is stored, then make your change.",
                "danger",
            )
            return

        described: list[str] = []

        def said(result: Registered) -> str:
            described.append(_describe(result, changes=sorted(changes)))
            if dry_run:
                return f"Dry run: the change to '{table_id}' is valid; nothing was saved."
            saved = f"Saved '{table_id}' ({', '.join(sorted(changes)) or 'no changes'})."
            if result.resync:
                saved += " A sync applying it has started; until it ends the table serves the "
                saved += "last sync's data."
            return saved

        def done(ok: bool) -> None:
            self.editing = False
            if ok and not dry_run:
                self.edit_for = None  # the form is read again from what was stored
                self.refresh()
            self.edit_result.object = "".join(described)

        self.editing = True
        self._against_source(
            f"the change to '{table_id}'",
            lambda actor: self.admin.update(actor, table_id, changes, dry_run=dry_run),
            said,
            form=form,
            options=options,
            spec=spec,
            done=done,
        )

    # --- registering ------------------------------------------------------------------

    def _on_tab(self, event: Any) -> None:
        if event.new == REGISTER_TAB:
            self.register_tab()

    def register_tab(self) -> RegisterTab:
        """The "Register a table" tab, built the first time it is asked for (its forms
        cost ~60 ms of the page's build, paid only by an admin who registers)."""
        if self._register is None:
            self._register = RegisterTab(self)
            self.register_area.objects = [self._register.view]
        return self._register

    # --- shared -----------------------------------------------------------------------

    def _on_edit_source(self, source: str | None) -> None:
        self.edit_options = self._options_form(source, {})
        if self.edit_form is not None:
            self.edit_area.objects = [
                pn.Row(self.edit_form.view, self.edit_options.view, sizing_mode="stretch_width")
            ]

    def _options_form(self, source: str | None, values: dict[str, Any]) -> ModelForm:
        model: type[BaseModel] = NoOptions
        if source:
            with suppress(AgnesError):  # the source field shows the problem on validation
                model = self.admin.table_options_model(source)
        return ModelForm(model, values=values, title="Source options" if model.model_fields else "")

    def _act(
        self,
        action: Callable[[Principal], str],
        *,
        form: ModelForm | None = None,
        options: ModelForm | None = None,
        spec: TableSpec | None = None,
        actor: Principal | None = None,
    ) -> bool:
        """Run ``action`` for the admin acting now (session re-checked first, unless the
        ``actor`` checked when the work began is given); report the outcome, a refusal
        beside the field it is about. True when it succeeded."""
        if actor is None:
            try:
                actor = self.ctx.actor()
            except (AuthenticationError, PermissionDenied) as exc:
                self._say(
                    f"Nothing was changed: {exc.message} Sign in again at /auth/login.", "danger"
                )
                return False
        try:
            said = action(actor)
        except TableNotRegistered as exc:  # unregistered elsewhere since the page showed it
            self.selected = None
            self.refresh()
            self._say(
                f"Nothing was changed: {exc.message} It was unregistered meanwhile.", "danger"
            )
            return False
        except AgnesError as exc:
            self._say(f"Nothing was changed: {_text(exc)}", "danger")
            if form is not None and spec is not None:
                field = self.admin.field_of(exc, spec)
                if field == "source_options" and options is not None:
                    options.show_error(None, _text(exc))
                else:
                    form.show_error(field, _text(exc))
            return False
        self._say(said, "success")
        return True

    def _against_source(
        self,
        what: str,
        call: Callable[[Principal], Registered],
        then: Callable[[Registered], str],
        *,
        form: ModelForm,
        options: ModelForm,
        spec: TableSpec,
        done: Callable[[bool], None],
    ) -> None:
        """Run ``call`` (it asks the source: a remote API, minutes on a slow one) off the
        page threads every admin shares; on the page's next tick report it as
        :meth:`_act` does (``then`` words a success) and call ``done(succeeded)``."""
        acting: list[Principal] = []

        def start(actor: Principal) -> str:
            acting.append(actor)
            return f"Checking {what} against its source…"

        if not self._act(start):
            done(False)
            return

        def finished(outcome: Future[Registered]) -> None:
            ok = False
            try:
                ok = self._act(
                    lambda _: then(outcome.result()),
                    form=form,
                    options=options,
                    spec=spec,
                    actor=acting[0],
                )
            except Exception:  # a connector's bug: said here, the details in the server log
                logger.exception("checking %s against its source failed", what)
                self._say(
                    f"{what[:1].upper()}{what[1:]} could not be checked; see the server log.",
                    "danger",
                )
            finally:
                done(ok)  # the page takes clicks again

        in_background(lambda: call(acting[0]), finished)

    def _say(self, text: str, kind: Literal["success", "warning", "danger"]) -> None:
        self.message.object = plain(text)
        self.message.alert_type = kind
        self.message.visible = True


class RegisterTab:
    """Registering a table: pick a source, then one of its tables (or type its name); the
    form is derived from :class:`TableSpec`, the options form from the source's
    connector."""

    def __init__(self, page: TablesPage) -> None:
        self.page = page
        self.form = ModelForm(
            TableSpec,
            exclude=("source_options",),
            choices={"source_type": page.source_names},
            multiline=MULTILINE,
            title="Table",
        )
        self.options = page._options_form(None, {})
        self.options_area = pn.Column(self.options.view, sizing_mode="stretch_width")
        self.offered = pn.widgets.Tabulator(
            pd.DataFrame(columns=["bucket", "source_table", "suggested_id", "description"]),
            selectable=1,
            disabled=True,
            show_index=False,
            pagination="remote",
            page_size=PAGE_SIZE,
            sizing_mode="stretch_width",
        )
        self.offered_error = pn.pane.Markdown("")
        self.sync_after = pn.widgets.Checkbox(label="Sync once saved", value=True)
        self.dry_run_button = pn.widgets.Button(label="Dry run")
        self.save_button = pn.widgets.Button(label="Save", color="primary")
        self.result = pn.pane.Markdown("")
        self.checking = False  # a dry run or save is being checked against the source
        self.form.watch("source_type", self._on_source)
        self.offered.param.watch(self._on_offered, "selection")
        self.dry_run_button.on_click(lambda _: self.submit(dry_run=True))
        on_click(self.save_button, lambda: self.submit(dry_run=False))
        self.view = pn.Column(
            pn.pane.Markdown("Pick a source, then one of its tables (or type its name)."),
            self.offered,
            self.offered_error,
            pn.Row(self.form.view, self.options_area, sizing_mode="stretch_width"),
            pn.Row(self.sync_after, self.dry_run_button, self.save_button),
            self.result,
            sizing_mode="stretch_width",
        )

    def _on_source(self, source: str | None) -> None:
        """Another source chosen: its options form at once, and its tables once the source
        has listed them. The listing (a remote API, retried, minutes on a slow one) runs
        off the page threads every admin shares (:func:`in_background`)."""
        self.options = self.page._options_form(source, {})
        self.options_area.objects = [self.options.view]
        self._offer([])
        if not source:
            self.offered_error.object = ""
            return
        self.offered_error.object = plain(f"Reading the tables {source} offers…")
        in_background(
            lambda: self.page.admin.source_tables(source).tables,
            lambda done: self._listed(source, done),
        )

    def _listed(self, source: str, done: Future[list[SourceTableInfo]]) -> None:
        if self.form.fields["source_type"].widget.value != source:
            return  # another source was chosen meanwhile: its own listing shows
        try:
            tables = done.result()
        except AgnesError as exc:
            self.offered_error.object = f"⚠ {plain(_text(exc))}"
            return
        except Exception:  # a connector's bug: said here, the details in the server log
            logger.exception("listing the tables of source %s failed", source)
            self.offered_error.object = plain(
                f"⚠ The tables of {source} could not be read; the server log has the details."
            )
            return
        self.offered_error.object = ""
        self._offer([t.model_dump() for t in tables])

    def _offer(self, rows: list[dict[str, Any]]) -> None:
        self.offered.selection = []
        self.offered.value = pd.DataFrame(
            rows, columns=["bucket", "source_table", "suggested_id", "description"]
        )

    def _on_offered(self, event: Any) -> None:
        if not event.new:
            return
        row = self.offered.value.iloc[event.new[0]]
        values: dict[str, Any] = {"bucket": row["bucket"], "source_table": row["source_table"]}
        if row["suggested_id"]:
            values["id"] = row["suggested_id"]
        self.form.set_values(values)

    def submit(self, *, dry_run: bool) -> None:
        """Check the table against its source (and save it, unless ``dry_run``), off the
        page threads; a click while the last one is being checked is dropped."""
        if self.checking:
            return
        form, options = self.form, self.options
        self.result.object = ""
        spec = _validated(form, options, self.page._say)
        if spec is None:
            return
        sync = self.sync_after.value and not dry_run
        first_sync: list[Future[Any]] = []

        def said(result: Registered) -> str:
            self.result.object = _describe(result)
            if dry_run:
                return f"Dry run: '{spec.id}' is valid; nothing was saved."
            if result.first_sync is None:
                return f"Registered '{spec.id}'."
            first_sync.append(result.first_sync)
            return f"Registered '{spec.id}'. A first sync is under way; its outcome shows here."

        def done(ok: bool) -> None:
            self.checking = False
            if ok and not dry_run:
                self.page.refresh()
                for future in first_sync:  # waited for off the page threads, as Sync now is
                    in_background(future.result, lambda run: self.page._synced(spec.id, run))

        self.checking = True
        self.page._against_source(
            f"'{spec.id}'",
            lambda actor: self.page.admin.register(actor, spec, dry_run=dry_run, sync=sync),
            said,
            form=form,
            options=options,
            spec=spec,
            done=done,
        )


def _validated(
    form: ModelForm, options: ModelForm, say: Callable[[str, Literal["warning"]], None]
) -> TableSpec | None:
    """The spec the two forms describe, or None with their problems shown beside their
    fields and the page's message saying so (an earlier outcome is not left up)."""
    option_values = options.validate()
    spec = form.validate(
        extra={
            "source_options": option_values.model_dump(exclude_defaults=True)
            if option_values is not None
            else {}
        }
    )
    if option_values is None or spec is None:
        say("Nothing was checked or saved: fix the fields marked.", "warning")
        return None
    assert isinstance(spec, TableSpec)
    return spec


def _chosen(value: str | None) -> str | None:
    return None if value in (None, ALL) else value


def _text(error: AgnesError) -> str:
    return error.message + (f" {error.hint}" if error.hint else "")


def _describe(result: Registered, changes: list[str] | None = None) -> str:
    table = result.table
    lines = [
        f"**{'Would be saved' if result.dry_run else 'Saved'}:** `{table.id}` from "
        f"{table.source_type} ({table.query_mode.value}, {table.sync_strategy.value})"
    ]
    if changes is not None:
        lines.append(f"Changed: {', '.join(changes) or 'nothing'}")
    lines.append("Columns: " + ", ".join(f"`{c.name}` {c.type}" for c in result.columns))
    return "\n\n".join(lines)


def _registry_frame(entries: list[RegistryEntry]) -> pd.DataFrame:
    rows = [
        {
            "id": e.id,
            "name": e.name,
            "source": e.source_type,
            "mode": e.query_mode.value,
            "strategy": e.sync_strategy.value,
            "schedule": e.sync_schedule or "",
            "status": e.status,
            # In UTC, saying so (the browser wrote datetimes in its own zone and format).
            "last_success": shown_time(e.sync.last_success_at if e.sync else None),
            "rows": e.sync.rows if e.sync else None,
            "size_bytes": e.sync.size_bytes if e.sync else None,
            "next_run": shown_time(e.next_run),
        }
        for e in entries
    ]
    return whole_numbers(pd.DataFrame(rows, columns=REGISTRY_COLUMNS), "rows", "size_bytes")


def build(ctx: PageContext) -> Any:
    return TablesPage(ctx).view


register(Page(slug="tables", title="Tables", order=20, build=build))
