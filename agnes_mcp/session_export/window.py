"""``since``: a duration back from now (``30m``, ``2h``, ``1d``, ``1w``) or a point in time
(ISO 8601; UTC when it names no zone)."""

from __future__ import annotations

import datetime as dt
import re

from agnes_mcp.session_export.refusals import SinceInvalid

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_BACK = dt.timedelta(days=3660)


def parse_since(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """The UTC time ``text`` names; raises :class:`SinceInvalid`."""
    now = now or dt.datetime.now(dt.UTC)
    found = _DURATION.match(text)
    if found:
        # any count is a duration; past MAX_BACK (10 years) it is MAX_BACK (a count of 7
        # digits or more was "neither a duration nor an ISO time"). The bound is applied
        # to the seconds before a timedelta is made of them: 9999999999w is past what a
        # timedelta holds, and failed every front end (a 500, a traceback).
        digits = found[1].lstrip("0") or "0"
        if len(digits) > 12:  # and int() of thousands of digits is refused
            return now - MAX_BACK
        seconds = int(digits) * _UNIT_SECONDS[found[2].lower()]
        if seconds >= MAX_BACK.total_seconds():
            return now - MAX_BACK
        return now - dt.timedelta(seconds=seconds)
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise SinceInvalid(
            f"'{text[:60]}' is neither a duration (30m, 2h, 1d, 1w) nor an ISO time.",
            details={"since": text[:60]},
        ) from None
    return as_utc(when)


def as_utc(when: dt.datetime) -> dt.datetime:
    """``when`` in UTC (a time without a zone is taken as UTC)."""
    try:
        return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
    except OverflowError:
        raise SinceInvalid("The time is out of range.") from None
