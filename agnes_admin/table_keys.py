"""Tab moves past a read-only table to the next control, as past any other.

Panel gives every column of a Tabulator an editor, even in a table that is ``disabled``
(read-only, as all the admin app's tables are): Tabulator then makes each cell focusable,
and a cell that gets focus but may not be edited is blurred at once. Tab from a table
landed on its first cell, focus fell to the page's body, and the next Tab did the same:
a keyboard-only admin never reached a control after a table (the Revoke button under the
tokens, the forms under every list). A read-only table's columns here have no editor,
so its cells are not stops on the way.

Imported by the package of pages, before any table is made.
"""

from __future__ import annotations

import functools
from typing import Any

import panel as pn

_made = pn.widgets.Tabulator.__init__


def no_editors(table: pn.widgets.Tabulator) -> None:
    """No editor for the columns of ``table`` while it is read-only (a column that came
    with new data included); an editor chosen for a column is kept."""
    if not table.disabled:
        return
    missing = [str(c) for c in table.value.columns if c not in table.editors]
    if missing:
        table.editors = {**table.editors, **dict.fromkeys(missing)}


@functools.wraps(_made)
def _made_read_only(self: pn.widgets.Tabulator, *args: Any, **params: Any) -> None:
    _made(self, *args, **params)
    no_editors(self)
    self.param.watch(lambda _: no_editors(self), ["value", "disabled"])


pn.widgets.Tabulator.__init__ = _made_read_only  # type: ignore[method-assign]
