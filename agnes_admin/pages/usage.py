"""Usage: bytes scanned per user per day (a plot), the heaviest and the slowest queries,
refusals by code, and each user's scan budget left today; all from the audit log."""

from __future__ import annotations

import pandas as pd
import panel as pn

from agnes_admin.context import PageContext
from agnes_admin.markdown_text import plain
from agnes_admin.pages import Page, cut_text, register, whole_numbers
from agnes_admin.times import shown_time
from agnes_mcp.usage_report import MAX_DAYS, TopQuery, UsageReport, usage_report
from agnes_sync.errors import AgnesError
from agnes_sync.human_size import exact_size, human_size

TOP_COLUMNS = ["at", "email", "action", "result", "bytes_scanned", "duration_ms", "sql"]
REFUSAL_COLUMNS = ["code", "action", "count"]
BUDGET_COLUMNS = ["email", "spent_today", "left_today", "daily_cap"]
SQL_SHOWN = 300  # characters of a query's SQL in the tables


def _left(left: int, cap: int) -> str:
    """What is left of a budget: rounded, unless rounding reads as the whole cap when some
    of it was spent (6 MiB spent of 50 GiB read "50.0 GiB" left), then exact."""
    shown = human_size(left)
    return exact_size(left) if left < cap and shown == human_size(cap) else shown


def _table(columns: list[str]) -> pn.widgets.Tabulator:
    return pn.widgets.Tabulator(
        pd.DataFrame(columns=columns),
        disabled=True,
        show_index=False,
        pagination="local",
        page_size=20,
        sizing_mode="stretch_width",
    )


class UsagePage:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        # No start/end on the widget: the browser put an out-of-range entry back to the
        # last value without a word; the report refuses it beside the box instead.
        self.days = pn.widgets.IntInput(label=f"Days (1-{MAX_DAYS})", value=14, width=120)
        self.refresh_button = pn.widgets.Button(label="Refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        # A number typed and Enter (or Tab) shows that window, as the other pages' filters
        # do: the box alone did nothing until Refresh was clicked.
        self.days.param.watch(lambda _: self.refresh(), "value")
        self.message = pn.pane.Alert("", alert_type="danger", visible=False)
        self.plot = pn.pane.HoloViews(None, sizing_mode="stretch_width", height=320)
        self.no_data = pn.pane.Markdown("No bytes scanned in this window.", visible=False)
        self.top_by_bytes = _table(TOP_COLUMNS)
        self.top_by_duration = _table(TOP_COLUMNS)
        self.refusals = _table(REFUSAL_COLUMNS)
        self.budgets = _table(BUDGET_COLUMNS)
        self.report: UsageReport | None = None
        self.refresh()
        self.view = pn.Column(
            pn.Row(self.days, self.refresh_button),
            self.message,
            pn.pane.Markdown("### Bytes scanned per user per day"),
            self.plot,
            self.no_data,
            pn.Tabs(
                ("Top queries by bytes", self.top_by_bytes),
                ("Top queries by duration", self.top_by_duration),
                ("Refusals by code", self.refusals),
                ("Budget left today", self.budgets),
            ),
            sizing_mode="stretch_width",
        )

    def refresh(self) -> None:
        if self.days.value is None:
            self.message.object = f"Give the number of days to show (1-{MAX_DAYS})."
            self.message.visible = True
            return
        try:
            report = usage_report(self.ctx.services, self.ctx.actor(), days=int(self.days.value))
        except AgnesError as exc:
            self.message.object = plain(exc.message)
            self.message.visible = True
            return
        self.message.visible = False
        self.report = report
        self._plot(report)
        self.top_by_bytes.value = _tops(report.top_by_bytes)
        self.top_by_duration.value = _tops(report.top_by_duration)
        self.refusals.value = pd.DataFrame(
            [r.model_dump() for r in report.refusals], columns=REFUSAL_COLUMNS
        )
        self.budgets.value = pd.DataFrame(
            [
                {
                    "email": b.email,
                    "spent_today": human_size(b.spent_today),
                    "left_today": _left(b.left_today, b.daily_cap),
                    "daily_cap": human_size(b.daily_cap),
                }
                for b in report.budgets
            ],
            columns=BUDGET_COLUMNS,
        )

    def _plot(self, report: UsageReport) -> None:
        rows = [
            {
                "day": str(d.day),
                "user": d.email or d.user_id or "(none)",
                "bytes_scanned": d.bytes_scanned,
            }
            for d in report.bytes_per_user_day
            if d.bytes_scanned
        ]
        self.no_data.visible = not rows
        if not rows:
            self.plot.object = None
            return
        import hvplot.pandas  # noqa: F401 - registers .hvplot on DataFrames

        frame = pd.DataFrame(rows)
        unit, scale = _unit(int(frame.groupby("day")["bytes_scanned"].sum().max()))
        frame["scanned"] = frame["bytes_scanned"] / scale
        self.plot.object = frame.hvplot.bar(
            x="day",
            y="scanned",
            by="user",
            stacked=True,
            ylabel=f"{unit} scanned",
            xlabel="day (UTC)",
            legend="top_left",
        )


def _tops(queries: list[TopQuery]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            {
                "at": shown_time(q.at, seconds=True),  # not the browser's zone and format
                "email": q.email or q.user_id,
                "action": q.action,
                "result": q.result,
                "bytes_scanned": q.bytes_scanned,
                "duration_ms": round(q.duration_ms, 1) if q.duration_ms is not None else None,
                "sql": cut_text(q.sql, SQL_SHOWN, f"Audit log, row {q.id}"),
            }
            for q in queries
        ],
        columns=TOP_COLUMNS,
    )
    return whole_numbers(frame, "bytes_scanned")


UNITS = (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))


def _unit(largest: int) -> tuple[str, int]:
    """The unit the chart's axis counts in: the largest that the biggest bar reaches."""
    return next(((name, size) for name, size in UNITS if largest >= size), ("bytes", 1))


def build(ctx: PageContext) -> pn.viewable.Viewable:
    return UsagePage(ctx).view


register(Page(slug="usage", title="Usage", order=60, build=build))
