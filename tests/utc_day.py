"""Each test runs within one UTC day.

The daily scan budget, the usage report's "today" and the admin overview's counts read
the wall clock's date: a test that passed midnight between two of its calls (a query
charged on one day, the budget read on the next) compared two days' numbers and failed.
A test that starts in the day's last :data:`DAY_END_MARGIN` waits for the next day first.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

# Longer than a test that reads "today" takes on a busy machine; short enough that the
# wait and the longest test (about a minute) stay within pytest-timeout's 120 s.
DAY_END_MARGIN = timedelta(seconds=30)


def wait_for_a_whole_day(now: datetime) -> float:
    """Seconds to wait from ``now`` (UTC) so that a test starting then ends the day it
    started: none, or until midnight when the day has less than the margin left."""
    midnight = datetime.combine(now.date() + timedelta(days=1), time(), tzinfo=UTC)
    left = midnight - now
    return left.total_seconds() if left < DAY_END_MARGIN else 0.0
