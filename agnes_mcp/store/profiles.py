"""Table profiles (rows; per column null share, distinct estimate, min, max) for the catalog."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.ids import as_utc
from agnes_sync.profile import TableProfile


class StoredProfile(BaseModel):
    table_id: str
    profiled_at: datetime
    rows: int | None
    columns: list[dict[str, Any]]


class ProfileRepository:
    def __init__(self, store: SystemStore) -> None:
        self._store = store

    def put(self, table_id: str, profile: TableProfile, at: datetime) -> None:
        columns = json.dumps([asdict(c) for c in profile.columns])
        with self._store.transaction() as cur:  # a new generation: the catalog reads it
            cur.execute(
                "INSERT OR REPLACE INTO table_profiles VALUES (?, ?, ?, ?)",
                [table_id, at, profile.rows, columns],
            )

    def get(self, table_id: str) -> StoredProfile | None:
        with self._store.cursor() as cur:
            row = cur.execute(
                "SELECT table_id, profiled_at, rows, columns FROM table_profiles "
                "WHERE table_id = ?",
                [table_id],
            ).fetchone()
        if row is None:
            return None
        return StoredProfile(
            table_id=row[0], profiled_at=as_utc(row[1]), rows=row[2], columns=json.loads(row[3])
        )

    def delete(self, table_id: str) -> None:
        with self._store.writer() as cur:
            cur.execute("DELETE FROM table_profiles WHERE table_id = ?", [table_id])
