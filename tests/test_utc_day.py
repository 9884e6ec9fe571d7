"""The wait that keeps each test within one UTC day."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.utc_day import DAY_END_MARGIN, wait_for_a_whole_day


def test_a_test_in_the_days_last_seconds_waits_for_midnight() -> None:
    assert wait_for_a_whole_day(datetime(2026, 11, 30, 23, 59, 50, tzinfo=UTC)) == 10.0
    late = datetime(2026, 12, 31, 23, 59, 59, 750_000, tzinfo=UTC)  # the year's end too
    assert wait_for_a_whole_day(late) == 0.25


def test_any_other_time_waits_for_nothing() -> None:
    for moment in (
        datetime(2026, 12, 1, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
        datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC) - DAY_END_MARGIN,
    ):
        assert wait_for_a_whole_day(moment) == 0.0
