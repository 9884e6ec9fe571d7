"""Overview (``/admin``): the state of the instance at a glance, and a retry for every
table whose last sync failed. Numbers from ``agnes_mcp.admin_overview``; a retry goes
through ``RegistryAdmin.trigger``, the service ``POST /api/sync/trigger`` calls, which
audit-logs it with the acting admin."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

import pandas as pd
import panel as pn

from agnes_admin.background import in_background
from agnes_admin.context import PageContext
from agnes_admin.pages import Page, cut_text, register
from agnes_admin.shell import STYLE
from agnes_admin.times import shown_time
from agnes_mcp.admin_overview import Overview, SyncFailure, overview
from agnes_mcp.registry_admin import RegistryAdmin
from agnes_mcp.sync_service import SyncResult
from agnes_mcp.web_layout import esc
from agnes_sync.errors import AgnesError
from agnes_sync.human_size import human_size

ERROR_SHOWN = 500  # characters of a failure's error shown under "Needs you"
# Failures shown under "Needs you", each with its Retry: a source down with 1,000 tables
# made a row and a button for each, and the page took ~20 s to open.
FAILURES_SHOWN = 20


def _when(value: Any) -> str:
    return shown_time(value, never="never")


def summary(data: Overview) -> pn.pane.HTML:
    modes = ", ".join(f"{mode}: {count:,}" for mode, count in data.tables_by_mode.items())
    rows = [
        ("Tables", f"{sum(data.tables_by_mode.values()):,} ({modes or 'none registered'})"),
        ("Queries today", f"{data.queries_today:,} ({data.refused_today:,} refused)"),
        ("Bytes scanned today", human_size(data.bytes_scanned_today)),
        ("Server version", data.version),
        ("Data dir", data.data_dir),
    ]
    cells = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return pn.pane.HTML(
        f"<table class='agnes-summary'>{cells}</table>", name="summary", stylesheets=[STYLE]
    )


def sources_table(data: Overview) -> pn.widgets.Tabulator:
    frame = pd.DataFrame(
        [
            {
                "source": s.name,
                "connector": s.connector,
                "tables": s.tables,
                "last sync": _when(s.last_sync_at),
                "last success": _when(s.last_success_at),
                "storage": human_size(s.storage_bytes),
            }
            for s in data.sources
        ],
        columns=["source", "connector", "tables", "last sync", "last success", "storage"],
    )
    return pn.widgets.Tabulator(frame, show_index=False, disabled=True, sizing_mode="stretch_width")


def failure_row(ctx: PageContext, failure: SyncFailure) -> pn.Row:
    status = pn.pane.HTML("", margin=(5, 10), stylesheets=[STYLE])
    button = pn.widgets.Button(label="Retry", color="primary", width=80)

    # Held from a click until its sync is done: a double click (or a click before the
    # button shows disabled) queued a second sync and audited it twice.
    retrying = threading.Lock()

    def retry(_: object) -> None:
        if not retrying.acquire(blocking=False):
            return  # this table's retry is under way
        try:
            queued = RegistryAdmin(ctx.services).trigger(ctx.actor(), failure.table_id, wait=False)
        except AgnesError as exc:
            retrying.release()
            status.object = f"<span class='error'>{esc(exc.message)}</span>"
            return
        button.disabled = True
        status.object = f"Syncing {esc(failure.table_id)}; the outcome shows here when done."
        for run in queued.runs:  # waited for off the page threads (one run: one table)
            in_background(run.result, finished)

    def finished(done: Future[Any]) -> None:
        """How the retried sync went (a crash of the run is in the server log)."""
        retrying.release()
        result = done.result() if done.exception() is None else None
        if isinstance(result, SyncResult) and result.status == "ok":
            status.object = f"Synced: {result.rows or 0:,} rows; it no longer needs you."
            return
        error = (result.error or {}).get("message", "") if isinstance(result, SyncResult) else ""
        said = f"Failed again: {error}" if error else "The sync failed; the server log says why."
        status.object = f"<span class='error'>{esc(cut_text(said, ERROR_SHOWN, 'Tables'))}</span>"
        button.disabled = False

    button.on_click(retry)
    error = cut_text(failure.error, ERROR_SHOWN, "Tables, the table, Sync history")
    text = pn.pane.HTML(
        f"<strong>{esc(failure.table_id)}</strong> ({esc(failure.source)}), "
        f"{esc(_when(failure.failed_at))}: <code>{esc(error)}</code>",
        sizing_mode="stretch_width",
    )
    return pn.Row(text, button, status, sizing_mode="stretch_width", name=failure.table_id)


def _failed_when(failure: SyncFailure) -> float:
    return failure.failed_at.timestamp() if failure.failed_at is not None else float("-inf")


def build(ctx: PageContext) -> pn.Column:
    data = overview(ctx.services)
    parts: list[Any] = [summary(data)]
    parts.append(pn.pane.HTML("<h2>Needs you</h2>"))
    if data.failures or data.problems:
        # The latest failures first; the rest are counted, and where to find them said.
        latest = sorted(data.failures, key=_failed_when, reverse=True)
        parts.extend(failure_row(ctx, failure) for failure in latest[:FAILURES_SHOWN])
        if len(latest) > FAILURES_SHOWN:
            parts.append(
                pn.pane.HTML(
                    f"<p>The latest {FAILURES_SHOWN} of {len(latest):,} failing tables are "
                    "shown; every one is listed on <a href='/admin/tables'>Tables</a> with "
                    "Status <em>error</em>.</p>",
                    name="more-failures",
                )
            )
        parts.extend(pn.pane.Alert(text, alert_type="warning") for text in data.problems)
    else:
        parts.append(pn.pane.HTML("<p>Nothing: every sync succeeded.</p>", name="all-good"))
    parts.append(pn.pane.HTML("<h2>Sources</h2>"))
    parts.append(sources_table(data))
    return pn.Column(*parts, sizing_mode="stretch_width")


PAGE = register(Page(slug="", title="Overview", order=0, build=build))
