"""Sync schedules: when a table's next sync is due. All times are UTC.

Accepted forms: ``every 15m`` / ``every 2h`` / ``every 1d`` / ``every 30s``,
``hourly``, ``daily`` (00:00), ``daily 03:00``, and five-field cron expressions
(``*/10 * * * *``, ``0 3 * * 1-5``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter

from agnes_sync.errors import InvalidSchedule

_EVERY = re.compile(r"^every\s+(\d+)\s*(s|m|h|d)$")
_DAILY = re.compile(r"^daily(?:\s+([01]?\d|2[0-3]):([0-5]\d))?$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
MIN_INTERVAL = timedelta(seconds=10)


@dataclass(frozen=True)
class Schedule:
    text: str
    interval: timedelta | None = None
    cron: str | None = None

    def next_after(self, moment: datetime) -> datetime:
        """The first due time strictly after ``moment``."""
        moment = moment.astimezone(UTC)
        if self.interval is not None:
            return moment + self.interval
        assert self.cron is not None
        following: datetime = croniter(self.cron, moment).get_next(datetime)
        return following.astimezone(UTC)


def parse_schedule(text: str) -> Schedule:
    """A :class:`Schedule`, or :class:`InvalidSchedule` with the accepted forms."""
    cleaned = " ".join(text.strip().lower().split())
    every = _EVERY.match(cleaned)
    if every:
        interval = timedelta(**{_UNITS[every[2]]: int(every[1])})
        if interval < MIN_INTERVAL:
            raise InvalidSchedule(f"'{text}' is more often than every {MIN_INTERVAL.seconds}s.")
        return Schedule(text, interval=interval)
    if cleaned == "hourly":
        return Schedule(text, cron="0 * * * *")
    daily = _DAILY.match(cleaned)
    if daily:
        hour, minute = (int(daily[1]), int(daily[2])) if daily[1] else (0, 0)
        return Schedule(text, cron=f"{minute} {hour} * * *")
    if len(cleaned.split()) == 5 and croniter.is_valid(cleaned):
        return Schedule(text, cron=cleaned)
    raise InvalidSchedule(
        f"'{text}' is not a schedule.",
        hint="Use 'every 15m', 'every 2h', 'hourly', 'daily 03:00' or a cron expression "
        "such as '*/10 * * * *' (times are UTC).",
    )
