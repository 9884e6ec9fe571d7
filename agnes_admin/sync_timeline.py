"""Sync runs as a timeline: duration and rows per run over time, coloured by outcome
(a Bokeh layout, for a ``pn.pane.Bokeh``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bokeh.layouts import column
from bokeh.models import ColumnDataSource, HoverTool, NumeralTickFormatter, Range1d
from bokeh.plotting import figure

from agnes_mcp.store.sync_state import SyncRun

OUTCOME_COLOURS = {"ok": "#2e7d32", "error": "#c62828", "running": "#9e9e9e"}
OTHER_COLOUR = "#616161"
MIN_SPAN = dt.timedelta(hours=1)  # a time axis narrower than this ticks in microseconds


HISTORY_RUNS = 200  # the newest runs the timeline shows


def history_figure(runs: list[SyncRun], *, more: bool = False) -> Any:
    """Sync runs over time: duration and rows per run, coloured by outcome. ``more``: older
    runs were left out (the title says so)."""
    seconds = [(r.duration_ms or 0) / 1000 for r in runs]
    counts = [float(r.rows or 0) for r in runs]
    data = ColumnDataSource(
        {
            "started": [r.started_at for r in runs],
            "seconds": seconds,
            "rows": counts,
            "outcome": [r.status for r in runs],
            "colour": [OUTCOME_COLOURS.get(r.status, OTHER_COLOUR) for r in runs],
            "trigger": [r.trigger or "" for r in runs],
            "error": [r.error or "" for r in runs],
        }
    )
    duration = figure(
        height=220,
        x_axis_type="datetime",
        x_range=_time_range([r.started_at for r in runs]),
        y_range=_from_zero(seconds),
        title=f"Sync runs: the latest {len(runs)}; older runs are not shown"
        if more
        else "Sync runs",
        y_axis_label="seconds",
        sizing_mode="stretch_width",
        tools=[_hover(), "pan", "wheel_zoom", "reset"],
    )
    duration.scatter(
        "started", "seconds", source=data, color="colour", size=9, legend_field="outcome"
    )
    rows = figure(
        height=160,
        x_axis_type="datetime",
        x_range=duration.x_range,
        y_range=_from_zero(counts),
        y_axis_label="rows",
        x_axis_label="started (UTC)",
        sizing_mode="stretch_width",
        tools=[_hover(), "pan", "wheel_zoom", "reset"],
    )
    rows.scatter("started", "rows", source=data, color="colour", size=7)
    rows.yaxis.formatter = NumeralTickFormatter(format="0,0")  # 1,000,001, not 1.0000010e+6
    duration.yaxis.formatter = NumeralTickFormatter(format="0,0.[00]")
    return column(duration, rows, sizing_mode="stretch_width")


def _time_range(times: list[dt.datetime]) -> Range1d:
    """The runs' span, widened to at least :data:`MIN_SPAN` around them (one run, or runs
    close together, would otherwise make a span of microseconds)."""
    if not times:
        now = dt.datetime.now(dt.UTC)
        return Range1d(start=now - MIN_SPAN, end=now)
    low, high = min(times), max(times)
    pad = max((MIN_SPAN - (high - low)) / 2, (high - low) * 0.05)
    return Range1d(start=low - pad, end=high + pad)


def _from_zero(values: list[float]) -> Range1d:
    """0 to a little above the largest value (1 when all are 0)."""
    top = max(values, default=0) or 1
    return Range1d(start=0, end=top * 1.1)


def _hover() -> HoverTool:
    return HoverTool(
        tooltips=[
            # Bokeh writes a moment in UTC: said, as every admin page writes one.
            ("started", "@started{%F %T} UTC"),
            ("outcome", "@outcome"),
            ("seconds", "@seconds{0.00}"),
            ("rows", "@rows{0,0}"),
            ("trigger", "@trigger"),
            ("error", "@error"),
        ],
        formatters={"@started": "datetime"},
    )
