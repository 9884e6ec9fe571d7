"""Personal access tokens, stored only as a SHA-256 hash plus a public lookup prefix."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
from pydantic import BaseModel

from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
from agnes_mcp.errors import TokenNotFound
from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.ids import as_utc

_COLUMNS = (
    "t.id, t.user_id, u.email, t.name, t.prefix, t.token_hash, t.scopes, t.created_at, "
    "t.expires_at, t.last_used_at, t.last_used_ip, t.revoked_at"
)
_SELECT = f"SELECT {_COLUMNS} FROM personal_access_tokens t LEFT JOIN users u ON u.id = t.user_id"


class TokenInfo(BaseModel):
    """What may be shown about a token: everything but its hash."""

    id: str
    user_id: str
    user_email: str | None
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    last_used_ip: str | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class TokenRecord:
    info: TokenInfo
    token_hash: str


@dataclass(frozen=True)
class TokenUse:
    token_id: str
    at: datetime
    ip: str | None


def _record(row: tuple[Any, ...]) -> TokenRecord:
    info = TokenInfo(
        id=row[0],
        user_id=row[1],
        user_email=row[2],
        name=row[3],
        prefix=row[4],
        scopes=list(row[6]),
        created_at=as_utc(row[7]),
        expires_at=as_utc(row[8]),
        last_used_at=as_utc(row[9]),
        last_used_ip=row[10],
        revoked_at=as_utc(row[11]),
    )
    return TokenRecord(info=info, token_hash=row[5])


class TokenRepository:
    def __init__(self, store: SystemStore) -> None:
        self._store = store

    def add(
        self,
        *,
        token_id: str,
        user_id: str,
        name: str,
        prefix: str,
        token_hash: str,
        scopes: list[str],
        created_at: datetime,
        expires_at: datetime | None,
    ) -> TokenRecord:
        with self._store.transaction() as cur:
            cur.execute(
                "INSERT INTO personal_access_tokens "
                "(id, user_id, name, prefix, token_hash, scopes, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [token_id, user_id, name, prefix, token_hash, scopes, created_at, expires_at],
            )
        return self.get(token_id)

    def get(self, token_id: str) -> TokenRecord:
        with self._store.cursor() as cur:
            row = cur.execute(_SELECT + " WHERE t.id = ?", [token_id]).fetchone()
        if row is None:
            raise TokenNotFound(f"No token with id '{token_id}'.")
        return _record(row)

    def by_id(self, token_id: str) -> TokenRecord | None:
        with self._store.cursor() as cur:
            row = cur.execute(_SELECT + " WHERE t.id = ?", [token_id]).fetchone()
        return _record(row) if row else None

    def by_prefix(self, prefix: str) -> TokenRecord | None:
        with self._store.cursor() as cur:
            row = cur.execute(_SELECT + " WHERE t.prefix = ?", [prefix]).fetchone()
        return _record(row) if row else None

    def all(self, *, user_id: str | None = None) -> list[TokenInfo]:
        where, params = ("", []) if user_id is None else (" WHERE t.user_id = ?", [user_id])
        with self._store.cursor() as cur:
            rows = cur.execute(_SELECT + where + " ORDER BY t.created_at", params).fetchall()
        return [_record(r).info for r in rows]

    def revoke(self, token_id: str, at: datetime) -> TokenRecord:
        record = self.get(token_id)
        if record.info.revoked_at is None:
            with self._store.transaction() as cur:
                cur.execute(
                    "UPDATE personal_access_tokens SET revoked_at = ? WHERE id = ?", [at, token_id]
                )
        return self.get(token_id)

    def record_uses(self, uses: Iterable[TokenUse]) -> int:
        """Write last-used times in one batch (called off the request path). A use whose
        caller's IP is unknown (e.g. an admin page's websocket) keeps the last one known."""
        batch = [[use.at, use.ip, use.token_id] for use in uses]
        if not batch:
            return 0
        with self._store.writer() as cur:
            cur.executemany(
                "UPDATE personal_access_tokens SET last_used_at = ?, "
                "last_used_ip = coalesce(?, last_used_ip) WHERE id = ?",
                batch,
            )
        return len(batch)


def revoke_admin_scoped_on_leaving_admin(
    cur: duckdb.DuckDBPyConnection, user_id: str, at: datetime
) -> list[str]:
    """Inside the transaction that ends a membership in Admin: when ``user_id`` has no
    Admin membership left, revoke their live tokens with the 'admin' scope and return
    their ids. A demotion ends admin tokens for good: they must not come back to life
    the day the user is made an admin again."""
    still_admin = cur.execute(
        "SELECT 1 FROM user_group_members WHERE user_id = ? AND group_id = ?",
        [user_id, ADMIN_GROUP_ID],
    ).fetchone()
    if still_admin is not None:
        return []
    rows = cur.execute(
        "UPDATE personal_access_tokens SET revoked_at = ? "
        "WHERE user_id = ? AND revoked_at IS NULL AND list_contains(scopes, 'admin') "
        "RETURNING id",
        [at, user_id],
    ).fetchall()
    return sorted(r[0] for r in rows)
