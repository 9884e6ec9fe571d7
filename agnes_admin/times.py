"""A moment as every admin page writes it: in UTC, and saying so.

The Overview and ``/me`` wrote ``2026-12-01 09:30 UTC`` while the Tokens, Access, Audit,
Marketplaces and Tables pages wrote the same moment with no zone (and the Tables page
left its datetimes to the browser's own formatting): an admin east or west of UTC read
the bare ones as local time.
"""

from __future__ import annotations

import datetime as dt

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
