"""Metrics: each one's validation status, its definition and its SQL compiled for DuckDB
and BigQuery side by side; import YAML files (every problem listed with file and key,
applied only when all pass); delete after a confirmation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import pandas as pd
import panel as pn
import yaml

from agnes_admin.clicks import on_click
from agnes_admin.context import PageContext
from agnes_admin.markdown_text import plain
from agnes_admin.pages import Page, register
from agnes_mcp.metrics import admin as metric_admin
from agnes_mcp.metrics.loader import MetricsInvalid, decode_files
from agnes_mcp.metrics.service import MetricNotFound
from agnes_sync.errors import AgnesError

STATUS_COLUMNS = ["id", "display_name", "category", "tables", "status", "problems"]
PROBLEM_COLUMNS = ["file", "line", "key", "message"]
AlertKind = Literal["success", "danger", "info"]


class MetricsPage:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        self.message = pn.pane.Alert("", alert_type="info", visible=False)
        self.table = pn.widgets.Tabulator(
            pd.DataFrame(columns=STATUS_COLUMNS),
            selectable=1,
            disabled=True,
            show_index=False,
            pagination="local",
            page_size=25,
            sizing_mode="stretch_width",
        )
        self.table.param.watch(self._on_select, "selection")
        # Long lines of SQL (or of the definition) wrap inside their half of the page
        # rather than widen it past the window.
        wrapped = [":host pre, :host code { white-space: pre-wrap; overflow-wrap: anywhere; }"]
        self.definition = pn.pane.Markdown(
            "Select a metric to see its definition.",
            sizing_mode="stretch_width",
            stylesheets=wrapped,
        )
        self.duckdb_sql = pn.pane.Markdown(
            "", name="DuckDB", sizing_mode="stretch_width", stylesheets=wrapped
        )
        self.bigquery_sql = pn.pane.Markdown(
            "", name="BigQuery", sizing_mode="stretch_width", stylesheets=wrapped
        )
        self.delete_button = pn.widgets.Button(label="Delete metric", color="danger", disabled=True)
        self.confirm_delete = pn.widgets.Button(label="Yes, delete it", color="danger")
        self.cancel_delete = pn.widgets.Button(label="Cancel")
        self.confirm_text = pn.pane.Markdown("")
        self.confirm_row = pn.Row(
            self.confirm_text, self.confirm_delete, self.cancel_delete, visible=False
        )
        self.delete_button.on_click(lambda _: self.ask_delete())
        self.confirm_delete.on_click(lambda _: self.delete())
        self.cancel_delete.on_click(lambda _: self._hide_confirm())

        self.upload = pn.widgets.FileInput(accept=".yml,.yaml", multiple=True)
        self.replace = pn.widgets.Checkbox(label="Remove metrics these files do not hold")
        self.validate_button = pn.widgets.Button(label="Validate")
        self.import_button = pn.widgets.Button(label="Import", color="primary")
        self.validate_button.on_click(lambda _: self.import_files(dry_run=True))
        on_click(self.import_button, self.ask_import)
        # An import that removes metrics (and with them their grants) asks first.
        self.confirm_import = pn.widgets.Button(label="Yes, import and remove", color="danger")
        self.cancel_import = pn.widgets.Button(label="Cancel")
        self.import_question = pn.pane.Markdown("")
        self.import_row = pn.Row(
            self.import_question, self.confirm_import, self.cancel_import, visible=False
        )
        self.confirm_import.on_click(lambda _: self._confirmed_import())
        self.cancel_import.on_click(lambda _: self._withdraw_import())
        # A question is about what was chosen when it was asked: other files or another
        # choice of "remove" withdraw it, and a confirmed import applies what it named.
        self.pending_import: dict[str, str] | None = None
        self.upload.param.watch(lambda _: self._withdraw_import(), ["value", "filename"])
        self.replace.param.watch(lambda _: self._withdraw_import(), "value")
        self.problems = pn.widgets.Tabulator(
            pd.DataFrame(columns=PROBLEM_COLUMNS),
            disabled=True,
            show_index=False,
            visible=False,
            sizing_mode="stretch_width",
        )
        self.selected: str | None = None
        self.pending_delete: str | None = None  # the metric the open question names
        self._reloading = False
        self.refresh()
        self.view = pn.Column(
            self.message,
            self.table,
            pn.Row(self.delete_button, self.confirm_row),
            self.definition,
            pn.Row(
                pn.Column(
                    pn.pane.Markdown("**DuckDB**"), self.duckdb_sql, sizing_mode="stretch_width"
                ),
                pn.Column(
                    pn.pane.Markdown("**BigQuery**"), self.bigquery_sql, sizing_mode="stretch_width"
                ),
                sizing_mode="stretch_width",
            ),
            pn.pane.Markdown("### Import YAML"),
            pn.Row(self.upload, self.replace),
            pn.Row(self.validate_button, self.import_button),
            self.import_row,
            self.problems,
            sizing_mode="stretch_width",
        )

    # --- reading ------------------------------------------------------------------------------

    def refresh(self) -> None:
        statuses = metric_admin.metric_statuses(self.ctx.services, self.ctx.actor())
        self.table.value = pd.DataFrame(
            [
                {
                    "id": s.id,
                    "display_name": s.display_name,
                    "category": s.category,
                    "tables": ", ".join(s.tables),
                    "status": "valid" if s.valid else "invalid",
                    "problems": "; ".join(s.problems),
                }
                for s in statuses
            ],
            columns=STATUS_COLUMNS,
        )
        # The metric shown is shown again as stored now (an import may have changed its
        # definition, or removed it): its definition and SQL were left as they were.
        shown, ids = self.selected, [s.id for s in statuses]
        if shown is None:
            return
        if shown not in ids:
            self._forget_shown()
            return
        self._reloading = True
        try:
            self.table.selection = [ids.index(shown)]
        finally:
            self._reloading = False
        self.show(shown)

    def _forget_shown(self) -> None:
        self.selected = None
        self.delete_button.disabled = True
        self.definition.object = "Select a metric to see its definition."
        self.duckdb_sql.object = self.bigquery_sql.object = ""
        self._hide_confirm()

    def _on_select(self, event: Any) -> None:
        rows = event.new
        if rows and not self._reloading:
            self.show(str(self.table.value.iloc[rows[0]]["id"]))

    def show(self, metric_id: str) -> None:
        """Show ``metric_id``'s definition and its SQL for each dialect (a question about
        deleting another metric is withdrawn)."""
        if metric_id != self.pending_delete:
            self._hide_confirm()

        def load() -> None:
            shown = metric_admin.metric_sql(self.ctx.services, self.ctx.actor(), metric_id)
            text = yaml.safe_dump(shown.definition, sort_keys=False, allow_unicode=True)
            self.selected = metric_id
            self.definition.object = f"### {metric_id}\n```yaml\n{text}```"
            panes = {"duckdb": self.duckdb_sql, "bigquery": self.bigquery_sql}
            for compiled in shown.compiled:
                panes[compiled.dialect].object = (
                    f"```sql\n{compiled.sql}\n```"
                    if compiled.sql is not None
                    else f"Does not compile: {compiled.error}"
                )
            self.delete_button.disabled = False

        self._act(load)

    # --- changing -----------------------------------------------------------------------------

    def files(self) -> dict[str, str]:
        """The uploaded files: name -> text (a file that is not UTF-8 is a problem listed
        with its name, as ``agnes admin metrics import`` lists it)."""
        names = self.upload.filename or []
        values = self.upload.value or []
        if isinstance(names, str):
            names, values = [names], [values]
        return decode_files(
            {
                name: data if isinstance(data, bytes) else str(data).encode("utf-8")
                for name, data in zip(names, values, strict=False)
            }
        )

    def import_files(
        self, *, dry_run: bool, files: dict[str, str] | None = None, replace: bool | None = None
    ) -> None:
        """Validate every uploaded file (or ``files``); unless ``dry_run``, store all when
        all pass."""
        self.problems.visible = False

        def run() -> None:
            result = metric_admin.import_metrics(
                self.ctx.services,
                self.ctx.actor(),
                self.files() if files is None else files,
                replace=self.replace.value if replace is None else replace,
                dry_run=dry_run,
            )
            verb = "would import" if dry_run else "imported"
            gone = "would remove" if dry_run else "removed"
            removed = f"; {gone} {result.removed} other metrics" if result.removed else ""
            self._say(f"All files are valid: {verb} {', '.join(result.imported)}{removed}.")
            if not dry_run:
                self.refresh()

        self._act(run)

    def ask_import(self) -> None:
        """Import; when "Remove metrics these files do not hold" would remove any, ask
        first (their grants go with them)."""
        self._withdraw_import()
        if not self.replace.value:
            self.import_files(dry_run=False)
            return
        self.problems.visible = False

        def check() -> None:
            files = self.files()
            result = metric_admin.import_metrics(
                self.ctx.services, self.ctx.actor(), files, replace=True, dry_run=True
            )
            if not result.removed:
                self.import_files(dry_run=False, files=files, replace=True)
                return
            self.import_question.object = (
                f"Import {len(result.imported)} metrics and **remove {result.removed} others** "
                "that these files do not hold, with every grant of them?"
            )
            self.pending_import = files
            self.import_row.visible = True

        self._act(check)

    def _confirmed_import(self) -> None:
        files = self.pending_import
        self._withdraw_import()
        if files is not None:  # the files the question counted, with their removals
            self.import_files(dry_run=False, files=files, replace=True)

    def _withdraw_import(self) -> None:
        self.pending_import = None
        self.import_row.visible = False

    def ask_delete(self) -> None:
        if self.selected is None:
            return
        self.pending_delete = self.selected
        self.confirm_text.object = f"Delete **{self.selected}**? This cannot be undone."
        self.confirm_row.visible = True

    def delete(self) -> None:
        """Delete the metric the question named (not whichever is selected by now)."""
        metric_id = self.pending_delete
        self._hide_confirm()
        if metric_id is None:
            return

        def run() -> None:
            metric_admin.delete_metric(self.ctx.services, self.ctx.actor(), metric_id)
            self._forget_shown()
            self._say(f"Deleted {metric_id}.")
            self.refresh()

        self._act(run)

    def _hide_confirm(self) -> None:
        self.pending_delete = None
        self.confirm_row.visible = False

    # --- feedback -----------------------------------------------------------------------------

    def _act(self, action: Callable[[], None]) -> None:
        try:
            action()
        except MetricsInvalid as exc:
            self.problems.value = pd.DataFrame(
                [p.__dict__ for p in exc.problems], columns=PROBLEM_COLUMNS
            )
            self.problems.visible = True
            self._say(
                f"{len(exc.problems)} {'problem' if len(exc.problems) == 1 else 'problems'}; "
                "nothing was imported. Fix them and try again.",
                "danger",
            )
        except MetricNotFound as exc:  # deleted elsewhere since the page showed it
            self._forget_shown()
            self.refresh()
            self._say(f"{exc.message} It was deleted elsewhere; the list is reloaded.", "danger")
        except AgnesError as exc:
            self._say(exc.message, "danger")

    def _say(self, text: str, kind: AlertKind = "success") -> None:
        self.message.object = plain(text)
        self.message.alert_type = kind
        self.message.visible = True


def build(ctx: PageContext) -> pn.viewable.Viewable:
    return MetricsPage(ctx).view


register(Page(slug="metrics", title="Metrics", order=50, build=build))
