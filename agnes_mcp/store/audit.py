"""The audit log: who did what, to which resource, with what outcome."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.ids import as_utc


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    user_id: str | None
    action: str
    result: str
    resource: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    duration_ms: float | None = None
    client_ip: str | None = None


class AuditRow(BaseModel):
    id: int
    at: datetime
    user_id: str | None
    action: str
    resource: str | None
    params: dict[str, Any]
    result: str
    duration_ms: float | None
    client_ip: str | None


class AuditRepository:
    def __init__(self, store: SystemStore) -> None:
        self._store = store

    def add_many(self, entries: Sequence[AuditEntry]) -> int:
        if not entries:
            return 0
        rows = [
            [
                e.at,
                e.user_id,
                e.action,
                e.resource,
                json.dumps(e.params, default=str),
                e.result,
                e.duration_ms,
                e.client_ip,
            ]
            for e in entries
        ]
        with self._store.writer() as cur:
            cur.executemany(
                "INSERT INTO audit_log "
                "(occurred_at, user_id, action, resource, params, result, duration_ms, client_ip) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def recent(self, *, limit: int = 100, user_id: str | None = None) -> list[AuditRow]:
        where, params = ("", []) if user_id is None else (" WHERE user_id = ?", [user_id])
        with self._store.cursor() as cur:
            rows = cur.execute(
                "SELECT id, occurred_at, user_id, action, resource, params, result, duration_ms, "
                "client_ip "
                f"FROM audit_log{where} ORDER BY id DESC LIMIT ?",
                [*params, limit],
            ).fetchall()
        return [
            AuditRow(
                id=r[0],
                at=as_utc(r[1]),
                user_id=r[2],
                action=r[3],
                resource=r[4],
                params=json.loads(r[5]) if r[5] else {},
                result=r[6],
                duration_ms=r[7],
                client_ip=r[8],
            )
            for r in rows
        ]
