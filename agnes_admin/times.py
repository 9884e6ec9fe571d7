"""A moment as every admin page writes it: in UTC, and saying so.

The Overview and ``/me`` wrote ``2026-12-01 09:30 UTC`` while the Tokens, Access, Audit,
Marketplaces and Tables pages wrote the same moment with no zone (and the Tables page
left its datetimes to the browser's own formatting): an admin east or west of UTC read
the bare ones as local time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from panel.io.model import JSCode

MINUTES = "%Y-%m-%d %H:%M"
SECONDS = "%Y-%m-%d %H:%M:%S"


def shown_time(value: dt.datetime | None, *, seconds: bool = False, never: str = "") -> str:
    """``value`` in UTC as ``2026-12-01 09:30 UTC`` (with ``seconds``, ``09:30:15 UTC``);
    ``never`` when there is none. A time without a zone is one the store wrote in UTC."""
    if value is None:
        return never
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime(SECONDS if seconds else MINUTES) + " UTC"


NEVER = "never"  # a time column's cell for no time at all

# Tabulator sorts a column of these times as text, which orders the times but put
# 'never' after every one of them: sorted oldest first, the users never seen came last.
# Here 'never' (and an empty cell) sorts as older than any time, in either direction.
_NEVER_OLDEST = JSCode(
    "(a, b) => String(a === 'never' ? '' : a ?? '')"
    ".localeCompare(String(b === 'never' ? '' : b ?? ''))"
)


def never_sorted_oldest(*columns: str) -> dict[str, Any]:
    """A table's ``configuration`` sorting its time ``columns`` with :data:`NEVER` as the
    oldest (Panel merges these with the columns it makes from the data)."""
    return {"columns": [{"field": column, "sorter": _NEVER_OLDEST} for column in columns]}
