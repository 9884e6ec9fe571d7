"""Settings an admin can change while the server runs (e.g. scan caps).

Values are JSON; the settings file gives the defaults, a row here overrides them.
"""

from __future__ import annotations

import json
from typing import Any

from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.ids import utcnow


class ServerConfigRepository:
    def __init__(self, store: SystemStore) -> None:
        self._store = store

    def get(self, key: str, default: Any = None) -> Any:
        with self._store.cursor() as cur:
            row = cur.execute("SELECT value FROM server_config WHERE key = ?", [key]).fetchone()
        return json.loads(row[0]) if row else default

    def set(self, key: str, value: Any, *, updated_by: str | None = None) -> None:
        with self._store.transaction() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO server_config (key, value, updated_by, updated_at) "
                "VALUES (?, ?, ?, ?)",
                [key, json.dumps(value), updated_by, utcnow()],
            )

    def delete(self, key: str) -> None:
        with self._store.transaction() as cur:
            cur.execute("DELETE FROM server_config WHERE key = ?", [key])

    def all(self) -> dict[str, Any]:
        with self._store.cursor() as cur:
            rows = cur.execute("SELECT key, value FROM server_config ORDER BY key").fetchall()
        return {key: json.loads(value) for key, value in rows}
