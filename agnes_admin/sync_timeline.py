"""Sync runs as a timeline: duration and rows per run over time, coloured by outcome
(a Bokeh layout, for a ``pn.pane.Bokeh``)."""

from __future__ import annotations

from typing import Any

from bokeh.layouts import column
from bokeh.models import ColumnDataSource, HoverTool
from bokeh.plotting import figure

from agnes_mcp.store.sync_state import SyncRun

OUTCOME_COLOURS = {"ok": "#2e7d32", "error": "#c62828", "running": "#9e9e9e"}
OTHER_COLOUR = "#616161"


def history_figure(runs: list[SyncRun]) -> Any:
    """Sync runs over time: duration and rows per run, coloured by outcome."""
    data = ColumnDataSource(
        {
            "started": [r.started_at for r in runs],
            "seconds": [(r.duration_ms or 0) / 1000 for r in runs],
            "rows": [r.rows or 0 for r in runs],
            "outcome": [r.status for r in runs],
            "colour": [OUTCOME_COLOURS.get(r.status, OTHER_COLOUR) for r in runs],
            "trigger": [r.trigger or "" for r in runs],
            "error": [r.error or "" for r in runs],
        }
    )
    duration = figure(
        height=220,
        x_axis_type="datetime",
        title="Sync runs",
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
        y_axis_label="rows",
        sizing_mode="stretch_width",
        tools=[_hover(), "pan", "wheel_zoom", "reset"],
    )
    rows.scatter("started", "rows", source=data, color="colour", size=7)
    return column(duration, rows, sizing_mode="stretch_width")


def _hover() -> HoverTool:
    return HoverTool(
        tooltips=[
            ("started", "@started{%F %T}"),
            ("outcome", "@outcome"),
            ("seconds", "@seconds{0.00}"),
            ("rows", "@rows"),
            ("trigger", "@trigger"),
            ("error", "@error"),
        ],
        formatters={"@started": "datetime"},
    )
