"""Sync state per table (the latest outcome) and the history of every run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.ids import as_utc


class SyncState(BaseModel):
    table_id: str
    status: str  # never | running | ok | error
    last_started_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    rows: int | None
    size_bytes: int | None
    content_hash: str | None
    updated_at: datetime


class SyncRun(BaseModel):
    id: int
    table_id: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    rows: int | None
    size_bytes: int | None
    error: str | None
    trigger: str | None
    attempts: int | None
    duration_ms: float | None
    notes: str | None = None  # e.g. "schema changed: added channel"


_STATE = (
    "table_id, status, last_started_at, last_success_at, last_error, rows, size_bytes, "
    "content_hash, updated_at"
)
_RUN = (
    "id, table_id, started_at, finished_at, status, rows, size_bytes, error, trigger, "
    "attempts, duration_ms, notes"
)


def _state(row: tuple[Any, ...]) -> SyncState:
    values = dict(zip([c.strip() for c in _STATE.split(",")], row, strict=True))
    for key in ("last_started_at", "last_success_at", "updated_at"):
        values[key] = as_utc(values[key])
    return SyncState(**values)


def _run(row: tuple[Any, ...]) -> SyncRun:
    values = dict(zip([c.strip() for c in _RUN.split(",")], row, strict=True))
    values["started_at"] = as_utc(values["started_at"])
    values["finished_at"] = as_utc(values["finished_at"])
    return SyncRun(**values)


class SyncStateRepository:
    def __init__(self, store: SystemStore) -> None:
        self._store = store

    def queued(self, table_id: str, trigger: str, at: datetime) -> int:
        """Record a sync asked for and not started yet (``status`` 'queued'): the next run
        of the table takes it over, and one a stopped server never ran is run at its next
        start (:meth:`still_queued`), so a queued sync is never lost without a trace."""
        with self._store.writer() as cur:
            row = cur.execute(
                "INSERT INTO sync_history (table_id, started_at, status, trigger) "
                "VALUES (?, ?, 'queued', ?) RETURNING id",
                [table_id, at, trigger],
            ).fetchone()
        assert row is not None
        return int(row[0])

    def still_queued(self) -> list[tuple[str, str]]:
        """(table, trigger) of every queued sync no run has taken over yet, oldest first,
        one per table."""
        with self._store.cursor() as cur:
            rows = cur.execute(
                "SELECT table_id, arg_min(trigger, id) FROM sync_history "
                "WHERE status = 'queued' GROUP BY table_id ORDER BY min(id)"
            ).fetchall()
        return [(str(table), str(trigger)) for table, trigger in rows]

    def not_run(self, table_id: str, at: datetime, why: str) -> None:
        """Close the queued syncs of ``table_id`` as never run, saying why."""
        with self._store.writer() as cur:
            cur.execute(
                "UPDATE sync_history SET status = 'error', finished_at = ?, error = ? "
                "WHERE table_id = ? AND status = 'queued'",
                [at, why, table_id],
            )

    def started(self, table_id: str, trigger: str, at: datetime) -> int:
        """Mark a run as started, taking over the table's queued syncs (the oldest one's
        row becomes the run's; any later one is closed as served by it); returns the
        history row's id."""
        with self._store.writer() as cur:
            queued = cur.execute(
                "SELECT id FROM sync_history WHERE table_id = ? AND status = 'queued' ORDER BY id",
                [table_id],
            ).fetchall()
            if queued:
                row = cur.execute(
                    "UPDATE sync_history SET status = 'running', started_at = ? "
                    "WHERE id = ? RETURNING id",
                    [at, queued[0][0]],
                ).fetchone()
                for (later,) in queued[1:]:
                    cur.execute(
                        "UPDATE sync_history SET status = 'ok', finished_at = ?, "
                        "notes = ? WHERE id = ?",
                        [at, f"served by run {queued[0][0]}", later],
                    )
            else:
                row = cur.execute(
                    "INSERT INTO sync_history (table_id, started_at, status, trigger) "
                    "VALUES (?, ?, 'running', ?) RETURNING id",
                    [table_id, at, trigger],
                ).fetchone()
            cur.execute(
                "INSERT INTO sync_state (table_id, status, last_started_at, updated_at) "
                "VALUES (?, 'running', ?, ?) ON CONFLICT (table_id) DO UPDATE SET "
                "status = 'running', last_started_at = excluded.last_started_at, "
                "updated_at = excluded.updated_at",
                [table_id, at, at],
            )
        assert row is not None
        return int(row[0])

    def finished(
        self,
        run_id: int,
        table_id: str,
        *,
        at: datetime,
        ok: bool,
        attempts: int,
        duration_ms: float,
        rows: int | None = None,
        size_bytes: int | None = None,
        content_hash: str | None = None,
        error: str | None = None,
        notes: str | None = None,
    ) -> None:
        status = "ok" if ok else "error"
        with self._store.writer() as cur:
            cur.execute(
                "UPDATE sync_history SET finished_at = ?, status = ?, rows = ?, size_bytes = ?, "
                "error = ?, attempts = ?, duration_ms = ?, notes = ? WHERE id = ?",
                [at, status, rows, size_bytes, error, attempts, duration_ms, notes, run_id],
            )
            if ok:
                cur.execute(
                    "UPDATE sync_state SET status = 'ok', last_success_at = ?, last_error = NULL, "
                    "rows = ?, size_bytes = ?, content_hash = ?, updated_at = ? WHERE table_id = ?",
                    [at, rows, size_bytes, content_hash, at, table_id],
                )
            else:  # the previous data stays served: rows, size and hash are left as they were
                cur.execute(
                    "UPDATE sync_state SET status = 'error', last_error = ?, updated_at = ? "
                    "WHERE table_id = ?",
                    [error, at, table_id],
                )

    def get(self, table_id: str) -> SyncState | None:
        with self._store.cursor() as cur:
            row = cur.execute(
                f"SELECT {_STATE} FROM sync_state WHERE table_id = ?", [table_id]
            ).fetchone()
        return _state(row) if row else None

    def all(self) -> dict[str, SyncState]:
        with self._store.cursor() as cur:
            rows = cur.execute(f"SELECT {_STATE} FROM sync_state").fetchall()
        return {r[0]: _state(r) for r in rows}

    def history(self, table_id: str | None = None, *, limit: int = 50) -> list[SyncRun]:
        where, params = ("", []) if table_id is None else (" WHERE table_id = ?", [table_id])
        with self._store.cursor() as cur:
            rows = cur.execute(
                f"SELECT {_RUN} FROM sync_history{where} ORDER BY id DESC LIMIT ?",
                [*params, limit],
            ).fetchall()
        return [_run(r) for r in rows]

    def interrupted(self, at: datetime) -> int:
        """Runs left 'running' by a previous process are marked as errors (at start-up)."""
        with self._store.writer() as cur:
            row = cur.execute(
                "UPDATE sync_history SET status = 'error', finished_at = ?, "
                "error = 'interrupted: the server stopped during the sync' "
                "WHERE status = 'running' RETURNING id",
                [at],
            ).fetchall()
            cur.execute(
                "UPDATE sync_state SET status = 'error', "
                "last_error = 'interrupted: the server stopped during the sync', updated_at = ? "
                "WHERE status = 'running'",
                [at],
            )
        return len(row)
