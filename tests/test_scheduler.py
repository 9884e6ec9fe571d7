"""Schedules, the scheduler and the sync service: concurrency, single flight, retries, history."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import CancelledError
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agnes_mcp.services import Services
from agnes_mcp.settings import load_settings
from agnes_sync.errors import InvalidSchedule, TerminalSyncError, TransientSyncError
from agnes_sync.retry import with_retries
from agnes_sync.schedule import parse_schedule
from agnes_sync.scheduler import Job, Scheduler
from tests.conftest import SIGNAL_WAIT, register

NOON = datetime(2026, 11, 25, 12, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("every 15m", NOON + timedelta(minutes=15)),
        ("Every  2H", NOON + timedelta(hours=2)),
        ("every 1d", NOON + timedelta(days=1)),
        ("hourly", datetime(2026, 11, 25, 13, 0, tzinfo=UTC)),
        ("daily", datetime(2026, 11, 26, 0, 0, tzinfo=UTC)),
        ("daily 03:00", datetime(2026, 11, 26, 3, 0, tzinfo=UTC)),
        ("daily 23:30", datetime(2026, 11, 25, 23, 30, tzinfo=UTC)),
        ("*/10 * * * *", datetime(2026, 11, 25, 12, 10, tzinfo=UTC)),
        ("0 3 * * 1-5", datetime(2026, 11, 26, 3, 0, tzinfo=UTC)),
    ],
)
def test_schedule_forms(text: str, expected: datetime) -> None:
    assert parse_schedule(text).next_after(NOON) == expected


@pytest.mark.parametrize(
    "text", ["sometimes", "every 5s", "daily 25:00", "every m", "* * *", "61 * * * *"]
)
def test_invalid_schedules_say_what_is_accepted(text: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        parse_schedule(text)
    assert text in caught.value.message


def test_due_jobs() -> None:
    hourly = parse_schedule("hourly")
    jobs = [
        Job("never_synced", hourly, None, None),
        Job("fresh", hourly, NOON - timedelta(minutes=1), NOON),
        Job("stale", hourly, NOON - timedelta(hours=2), NOON - timedelta(hours=2)),
        Job("manual_only", None, None, None),
    ]
    scheduler = Scheduler(lambda: jobs, lambda key, reason: None)
    try:
        assert sorted(scheduler.due(NOON)) == ["never_synced", "stale"]
    finally:
        scheduler.stop()


def test_trigger_is_single_flight_and_slow_jobs_do_not_block_others() -> None:
    started: dict[str, float] = {}
    gate = threading.Event()
    runs: list[str] = []

    def run(key: str, reason: str) -> str:
        started.setdefault(key, time.monotonic())
        runs.append(key)
        if key == "slow":
            gate.wait(SIGNAL_WAIT)
        return key

    scheduler = Scheduler(lambda: [], run, workers=2)
    try:
        slow = scheduler.trigger("slow")
        again = scheduler.trigger("slow")
        assert again is slow  # joined, not started twice
        fast = scheduler.trigger("fast")
        assert fast.result(timeout=SIGNAL_WAIT) == "fast"  # not blocked by slow
        assert scheduler.running() == {"slow"}
        gate.set()
        assert slow.result(timeout=SIGNAL_WAIT) == "slow"
        assert runs.count("slow") == 1
    finally:
        scheduler.stop()


def test_a_run_asked_again_follows_the_one_in_progress_once() -> None:
    """What a table syncs changed while its sync ran (an admin's update): the run in
    progress read the old registration, so one more follows it; asks meanwhile join it."""
    gate = threading.Event()
    began = threading.Event()
    seen: list[str] = []
    spec = ["old"]

    def run(key: str, reason: str) -> str:
        read = spec[0]  # what the run reads at its start
        seen.append(read)
        if len(seen) == 1:
            began.set()
            gate.wait(SIGNAL_WAIT)
        return read

    scheduler = Scheduler(lambda: [], run, workers=2)
    try:
        first = scheduler.trigger("t")
        assert began.wait(SIGNAL_WAIT)
        spec[0] = "new"
        follow = scheduler.trigger("t", "registry.update", again=True)
        assert follow is not first
        assert scheduler.trigger("t", again=True) is follow  # joined, not a third run
        assert not follow.done()
        gate.set()
        assert first.result(timeout=SIGNAL_WAIT) == "old"
        assert follow.result(timeout=SIGNAL_WAIT) == "new"
        assert seen == ["old", "new"]
        idle = scheduler.trigger("t", again=True)  # nothing in progress: a plain run
        assert idle.result(timeout=SIGNAL_WAIT) == "new" and len(seen) == 3
    finally:
        scheduler.stop()


def test_a_run_asked_again_fails_as_its_run_does_and_ends_at_stop() -> None:
    gate = threading.Event()
    began = threading.Event()

    def run(key: str, reason: str) -> str:
        if not began.is_set():
            began.set()
            gate.wait(SIGNAL_WAIT)
            return "first"
        raise ValueError("the second run failed")

    scheduler = Scheduler(lambda: [], run, workers=1)
    try:
        scheduler.trigger("t")
        assert began.wait(SIGNAL_WAIT)
        follow = scheduler.trigger("t", again=True)
        gate.set()
        with pytest.raises(ValueError, match="second run failed"):
            follow.result(timeout=SIGNAL_WAIT)
    finally:
        scheduler.stop()
    stopped = Scheduler(lambda: [], run, workers=1)
    gate.clear()
    began.clear()
    stopped.trigger("t")
    assert began.wait(SIGNAL_WAIT)
    pending = stopped.trigger("t", again=True)
    threading.Thread(target=stopped.stop).start()  # stop() waits for the run in progress
    gate.set()
    with pytest.raises((RuntimeError, CancelledError)):
        pending.result(timeout=SIGNAL_WAIT)


def test_retries_only_transient_failures() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TransientSyncError("busy")
        return "done"

    assert with_retries(flaky, attempts=3, backoff_seconds=0.001) == ("done", 3)

    def always_busy() -> str:
        raise TransientSyncError("still busy")

    with pytest.raises(TransientSyncError) as caught:
        with_retries(always_busy, attempts=2, backoff_seconds=0.001)
    assert caught.value.details["attempts"] == 2

    def broken() -> str:
        calls.append(1)
        raise TerminalSyncError("bad data")

    calls.clear()
    with pytest.raises(TerminalSyncError):
        with_retries(broken, attempts=5, backoff_seconds=0.001)
    assert len(calls) == 1


def test_retries_wait_as_long_as_the_source_asked() -> None:
    slept: list[float] = []
    tries: list[int] = []

    def rate_limited(asked: float) -> str:
        tries.append(1)
        if len(tries) < 2:
            raise TransientSyncError("slow down", details={"retry_after_seconds": asked})
        return "done"

    assert with_retries(lambda: rate_limited(7), sleep=slept.append) == ("done", 2)
    assert slept == [7.0]  # not the 2 s backoff: the source said 7
    tries.clear()
    with pytest.raises(TransientSyncError) as caught:  # longer than a sync waits in place
        with_retries(lambda: rate_limited(3600), sleep=slept.append)
    assert len(tries) == 1 and slept == [7.0] and caught.value.retry_after_seconds == 3600


def test_two_tables_sync_concurrently_and_history_is_kept(synced: Services) -> None:
    for name in ("slow_a", "slow_b"):
        register(
            synced, id=name, source_type="sample", source_options={"rows": 50, "delay_seconds": 0.6}
        )
    results = synced.sync.sync_many(["slow_a", "slow_b"])
    assert [r.status for r in results] == ["ok", "ok"]
    runs = {r.table_id: r for r in synced.sync_states.history()}
    a, b = runs["slow_a"], runs["slow_b"]
    assert a.started_at < b.finished_at and b.started_at < a.finished_at  # they overlapped
    assert {r.trigger for r in runs.values()} == {"manual"}


def test_transient_failures_are_retried_and_terminal_ones_reported(synced: Services) -> None:
    register(synced, id="flaky", source_type="sample", source_options={"fail_times": 2})
    result = synced.sync.sync("flaky")
    assert result.status == "ok" and result.attempts == 3

    register(
        synced,
        id="broken",
        source_type="sample",
        source_options={"fail_times": 5, "failure": "terminal"},
    )
    failed = synced.sync.sync("broken")
    assert failed.status == "error" and failed.attempts == 1
    assert failed.error is not None and failed.error["code"] == "sync_terminal_failure"
    state = synced.sync_states.get("broken")
    assert (
        state is not None
        and state.status == "error"
        and "injected terminal" in (state.last_error or "")
    )
    history = synced.sync_states.history("broken")
    assert [(h.status, h.attempts) for h in history] == [("error", 1)]


def test_a_failed_sync_keeps_the_previous_data(synced: Services, source_root) -> None:
    (source_root / "pay.csv").write_text("id,amount\n1,10\n")
    register(
        synced,
        id="pay",
        source_type="files",
        source_table="pay.csv",
        source_options={"columns": {"id": "INTEGER", "amount": "INTEGER"}},
    )
    assert synced.sync.sync("pay").status == "ok"
    before = synced.sync_states.get("pay")
    (source_root / "pay.csv").write_text("id,amount\n1,10\n2,oops\n")
    result = synced.sync.sync("pay")
    assert result.status == "error" and result.error is not None
    assert result.error["code"] == "source_data_invalid" and "line 3" in result.error["message"]
    after = synced.sync_states.get("pay")
    assert after is not None and before is not None
    assert (after.rows, after.content_hash, after.last_success_at) == (
        before.rows,
        before.content_hash,
        before.last_success_at,
    )
    con = synced.orchestrator.connect()
    assert con.execute("SELECT count(*) FROM pay").fetchone() == (1,)  # still served
    con.close()


def test_profile_is_stored_after_a_sync(synced: Services) -> None:
    register(synced, id="prof", source_type="sample", source_options={"rows": 200})
    synced.sync.sync("prof")
    profile = synced.profiles.get("prof")
    assert profile is not None and profile.rows == 200
    by_name = {c["name"]: c for c in profile.columns}
    assert by_name["id"]["min"] == "0" and by_name["id"]["max"] == "199"
    assert by_name["label"]["null_share"] == 0.0 and by_name["id"]["distinct_estimate"] > 150


def test_scheduler_runs_due_tables_in_the_background(synced: Services) -> None:
    register(synced, id="scheduled", source_type="sample", sync_schedule="every 1h")
    register(synced, id="manual", source_type="sample")
    started = synced.sync.scheduler.tick()
    assert started == ["scheduled"]  # never synced and scheduled: due now; unscheduled: never
    deadline = time.monotonic() + SIGNAL_WAIT
    while (
        synced.sync_states.get("scheduled") is None
        or synced.sync_states.get("scheduled").status != "ok"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert synced.sync.scheduler.tick() == []  # synced a moment ago; next run in an hour
    assert synced.sync_states.history("scheduled")[0].trigger == "schedule"
    assert synced.sync_states.get("manual") is None


def test_runs_left_running_by_a_crash_are_closed_at_start(synced: Services) -> None:
    register(synced, id="crashed", source_type="sample")
    synced.sync_states.started("crashed", "schedule", datetime.now(UTC))
    synced.sync.start()
    state = synced.sync_states.get("crashed")
    assert (
        state is not None and state.status == "error" and "interrupted" in (state.last_error or "")
    )


def test_every_failed_sync_leaves_one_line_in_the_server_log(
    synced: Services, caplog: pytest.LogCaptureFixture
) -> None:
    register(
        synced,
        id="broken_logged",
        source_type="sample",
        source_options={"fail_times": 5, "failure": "terminal"},
    )
    register(synced, id="fine", source_type="sample", source_options={"rows": 3})
    with caplog.at_level(logging.INFO, logger="agnes.sync"):
        synced.sync.sync("broken_logged", trigger="schedule")
        synced.sync.sync("fine")
    failed = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert failed == [
        "sync of broken_logged failed after 1 attempt (sync_terminal_failure): "
        "injected terminal failure 1 of 5"
    ]
    assert any(
        # the counts agree with their nouns ("1 file(s), 1 attempt(s)" before)
        r.getMessage().startswith("sync of fine (manual) ok: 3 rows, 1 file, ")
        and r.getMessage().endswith("s, 1 attempt")
        for r in caplog.records
    )


def test_syncs_queued_when_the_server_stops_run_at_its_next_start(
    tmp_path: Path, source_root: Path, warehouse: Path
) -> None:
    """`agnes admin sync --no-wait` queues syncs on the worker pool; a server stopped
    before they started dropped them without a trace (no history row, nothing run). Each
    is recorded as queued first: the next start runs it, and one whose table was
    unregistered meanwhile is closed as not run, saying why."""
    settings = load_settings(
        data_dir=tmp_path / "data",
        write_behind_seconds=0.05,
        sync_workers=1,
        scheduler_enabled=False,
        sources={"sample": {"connector": "sample"}},
    )
    first = Services.open(settings)
    try:
        register(first, id="slow", source_type="sample", source_options={"delay_seconds": 0.5})
        for name in ("quick", "gone"):
            register(first, id=name, source_type="sample", source_options={"rows": 5})
        for name in ("slow", "quick", "gone"):
            first.sync.enqueue(name)
    finally:
        first.close()  # the one worker is busy with slow: quick and gone never started

    second = Services.open(settings)
    try:
        assert [h.status for h in second.sync_states.history("quick")] == ["queued"]
        second.registry.delete("gone")
        second.start()
        for run in second.sync.requeued:
            run.result(timeout=SIGNAL_WAIT)
        quick = second.sync_states.history("quick")
        assert [(h.status, h.trigger, h.rows) for h in quick] == [("ok", "manual", 5)]
        gone = second.sync_states.history("gone")
        assert [h.status for h in gone] == ["error"] and "unregistered" in (gone[0].error or "")
        assert [h.status for h in second.sync_states.history("slow")] == ["ok"]
    finally:
        second.close()
