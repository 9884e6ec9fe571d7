"""A table fits the page: the columns past its width fold under each row.

A Tabulator is as wide as its columns' data: the Tables registry (its last column the
next run), the users (their groups), the marketplaces (the Sync and Remove buttons) ran
past a 1280 px window, and the columns past the edge could be reached only by scrolling
the table sideways, a scroll bar nobody saw. A read-only table here takes the width of
the page and lists the columns that do not fit under each row, with their names
(Tabulator's responsive "collapse" layout), so every value shows at any width.

A column that must stay in the row (a button) is given ``responsive: 0`` (see
:func:`keep_in_row`). Imported by the package of pages, before any table is made.
"""

from __future__ import annotations

import functools
from typing import Any

import panel as pn

FOLD = {"responsiveLayout": "collapse"}

_made = pn.widgets.Tabulator.__init__


def keep_in_row(*columns: str) -> dict[str, Any]:
    """A table's ``configuration`` keeping its buttons (added after the data's columns,
    so folded first) in the row, and folding only ``columns`` (the rightmost first)."""
    return {
        **FOLD,
        "columnDefaults": {"responsive": 0},  # never folded: the buttons
        "columns": [{"field": column, "responsive": 1} for column in columns],
    }


@functools.wraps(_made)
def _made_to_fit(self: pn.widgets.Tabulator, *args: Any, **params: Any) -> None:
    if params.get("disabled"):
        params.setdefault("layout", "fit_data_fill")
        params["configuration"] = {**FOLD, **(params.get("configuration") or {})}
    _made(self, *args, **params)


pn.widgets.Tabulator.__init__ = _made_to_fit  # type: ignore[method-assign]
