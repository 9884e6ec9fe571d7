"""Web sessions of people signed in at /auth/login: the cookie carries a signed id and a
secret; this table keeps the secret's SHA-256, who it is, and when it was last seen."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.ids import as_utc

_COLUMNS = (
    "id, secret_hash, user_id, method, created_at, last_seen_at, created_ip, revoked_at, "
    "token_id, scopes"
)


class WebSessionRecord(BaseModel):
    id: str
    secret_hash: str
    user_id: str
    method: str
    created_at: datetime
    last_seen_at: datetime
    created_ip: str | None
    revoked_at: datetime | None
    token_id: str | None = None  # the token it was signed in with, if any
    scopes: list[str] | None = None  # that token's scopes; None: every scope (OIDC)


def _record(row: tuple[Any, ...]) -> WebSessionRecord:
    return WebSessionRecord(
        id=row[0],
        secret_hash=row[1],
        user_id=row[2],
        method=row[3],
        created_at=as_utc(row[4]),
        last_seen_at=as_utc(row[5]),
        created_ip=row[6],
        revoked_at=as_utc(row[7]),
        token_id=row[8],
        scopes=row[9].split(",") if row[9] else None,
    )


class WebSessionRepository:
    def __init__(self, store: SystemStore) -> None:
        self._store = store

    def add(self, record: WebSessionRecord) -> None:
        with self._store.transaction() as cur:
            cur.execute(
                f"INSERT INTO web_sessions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    record.id,
                    record.secret_hash,
                    record.user_id,
                    record.method,
                    record.created_at,
                    record.last_seen_at,
                    record.created_ip,
                    record.revoked_at,
                    record.token_id,
                    ",".join(record.scopes) if record.scopes is not None else None,
                ],
            )

    def get(self, session_id: str) -> WebSessionRecord | None:
        with self._store.cursor() as cur:
            row = cur.execute(
                f"SELECT {_COLUMNS} FROM web_sessions WHERE id = ?", [session_id]
            ).fetchone()
        return _record(row) if row else None

    def of_user(self, user_id: str) -> list[WebSessionRecord]:
        with self._store.cursor() as cur:
            rows = cur.execute(
                f"SELECT {_COLUMNS} FROM web_sessions WHERE user_id = ? ORDER BY created_at",
                [user_id],
            ).fetchall()
        return [_record(r) for r in rows]

    def revoke(self, session_id: str, at: datetime) -> None:
        with self._store.transaction() as cur:
            cur.execute(
                "UPDATE web_sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                [at, session_id],
            )

    def revoke_user(self, user_id: str, at: datetime) -> None:
        with self._store.transaction() as cur:
            cur.execute(
                "UPDATE web_sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
                [at, user_id],
            )

    def record_seen(self, seen: Iterable[tuple[str, datetime]]) -> int:
        """Write last-seen times in one batch (called off the request path)."""
        batch = [[at, session_id] for session_id, at in seen]
        if not batch:
            return 0
        with self._store.writer() as cur:
            cur.executemany(
                "UPDATE web_sessions SET last_seen_at = greatest(last_seen_at, ?) WHERE id = ?",
                batch,
            )
        return len(batch)
