"""The write-behind: requests append to memory; a thread flushes; nothing is lost on failure."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from agnes_mcp.services import Services
from agnes_mcp.store.audit import AuditEntry
from tests.conftest import SIGNAL_WAIT, add_user


def entry(action: str) -> AuditEntry:
    return AuditEntry(at=datetime.now(UTC), user_id=None, action=action, result="ok")


def test_background_thread_flushes_and_stop_flushes_the_rest(services: Services) -> None:
    services.start()
    services.write_behind.audit(entry("first"))
    deadline = time.monotonic() + SIGNAL_WAIT
    while not services.audit_log.recent() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [r.action for r in services.audit_log.recent()] == ["first"]
    services.write_behind.stop()
    services.write_behind.audit(entry("at-shutdown"))
    services.write_behind.stop()
    assert [r.action for r in services.audit_log.recent()] == ["at-shutdown", "first"]


def test_a_failed_flush_keeps_everything_for_the_next_one(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = add_user(services)
    info, raw = services.tokens.create(user.id, "t")
    services.tokens.authenticate(raw, "198.51.100.1")
    services.write_behind.audit(entry("kept"))

    def broken(entries: object) -> int:
        raise OSError("disk full")

    monkeypatch.setattr(services.audit_log, "add_many", broken)
    with pytest.raises(OSError):
        services.write_behind.flush()
    assert services.write_behind.pending() == (0, 1)  # token use was written, audit kept
    monkeypatch.undo()
    assert services.write_behind.flush() == (0, 1)
    assert [r.action for r in services.audit_log.recent()] == ["kept"]
    assert services.token_store.get(info.id).info.last_used_ip == "198.51.100.1"


def test_newest_token_use_wins(services: Services) -> None:
    user = add_user(services)
    info, raw = services.tokens.create(user.id, "t")
    services.tokens.authenticate(raw, "192.0.2.1")
    services.tokens.authenticate(raw, "192.0.2.2")
    services.write_behind.flush()
    assert services.token_store.get(info.id).info.last_used_ip == "192.0.2.2"


def test_flush_returns_only_when_rows_a_concurrent_flush_took_are_written(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The background flush takes the queue, then writes; a flush() called meanwhile
    must not return before those rows are in the table."""
    import threading

    taken, release = threading.Event(), threading.Event()
    real_add_many = services.audit_log.add_many

    def slow_add_many(entries: list[AuditEntry]) -> int:
        if entries:
            taken.set()
            release.wait(SIGNAL_WAIT)
        return real_add_many(entries)

    monkeypatch.setattr(services.audit_log, "add_many", slow_add_many)
    services.write_behind.audit(entry("in-flight"))
    background = threading.Thread(target=services.write_behind.flush)
    background.start()
    assert taken.wait(SIGNAL_WAIT)
    done = threading.Event()
    caller = threading.Thread(target=lambda: (services.write_behind.flush(), done.set()))
    caller.start()
    assert not done.wait(0.2)  # still waiting for the in-flight rows
    release.set()
    assert done.wait(SIGNAL_WAIT)
    assert [r.action for r in services.audit_log.recent()] == ["in-flight"]
    background.join(SIGNAL_WAIT)
    caller.join(SIGNAL_WAIT)
