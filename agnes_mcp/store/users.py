"""Users of the server."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import duckdb
from pydantic import BaseModel

from agnes_mcp.errors import InvalidRequest, UserExists, UserNotFound
from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.ids import as_utc, new_id, utcnow

EVERYONE_GROUP_ID = "everyone"
ADMIN_GROUP_ID = "admin"

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_COLUMNS = "id, email, name, active, created_at, last_pull_at"


class User(BaseModel):
    id: str
    email: str
    name: str | None
    active: bool
    created_at: datetime
    last_pull_at: datetime | None


def _row(row: tuple[Any, ...]) -> User:
    return User(
        id=row[0],
        email=row[1],
        name=row[2],
        active=row[3],
        created_at=as_utc(row[4]),
        last_pull_at=as_utc(row[5]),
    )


def normalise_email(email: str) -> str:
    cleaned = email.strip().lower()
    if not _EMAIL.match(cleaned):
        raise InvalidRequest(
            f"'{email}' is not an e-mail address.", hint="Use the form name@example.com."
        )
    return cleaned


class UserRepository:
    def __init__(self, store: SystemStore) -> None:
        self._store = store

    def add(self, email: str, name: str | None = None, *, added_by: str | None = None) -> User:
        """Create a user; every user is also seeded into the Everyone group."""
        address = normalise_email(email)
        user_id = new_id("usr")
        now = utcnow()
        try:
            with self._store.transaction() as cur:
                cur.execute(
                    "INSERT INTO users (id, email, name, active, created_at) "
                    "VALUES (?, ?, ?, TRUE, ?)",
                    [user_id, address, name, now],
                )
                cur.execute(
                    "INSERT INTO user_group_members "
                    "(user_id, group_id, source, added_by, added_at) "
                    "VALUES (?, ?, 'system_seed', ?, ?)",
                    [user_id, EVERYONE_GROUP_ID, added_by, now],
                )
        except duckdb.ConstraintException:
            raise UserExists(
                f"A user with e-mail {address} already exists.",
                hint="List users with 'agnes admin user list'.",
            ) from None
        return self.get(user_id)

    def get(self, user_id: str) -> User:
        with self._store.cursor() as cur:
            row = cur.execute(f"SELECT {_COLUMNS} FROM users WHERE id = ?", [user_id]).fetchone()
        if row is None:
            raise UserNotFound(f"No user with id '{user_id}'.")
        return _row(row)

    def by_email(self, email: str) -> User | None:
        with self._store.cursor() as cur:
            row = cur.execute(
                f"SELECT {_COLUMNS} FROM users WHERE email = ?", [email.strip().lower()]
            ).fetchone()
        return _row(row) if row else None

    def find(self, ref: str) -> User:
        """A user by id or e-mail."""
        if "@" in ref:
            user = self.by_email(ref)
            if user is None:
                raise UserNotFound(f"No user with e-mail '{ref}'.")
            return user
        return self.get(ref)

    def all(self, *, include_inactive: bool = True) -> list[User]:
        where = "" if include_inactive else "WHERE active"
        with self._store.cursor() as cur:
            rows = cur.execute(f"SELECT {_COLUMNS} FROM users {where} ORDER BY email").fetchall()
        return [_row(r) for r in rows]

    def set_active(self, user_id: str, active: bool) -> User:
        self.get(user_id)
        with self._store.transaction() as cur:
            cur.execute("UPDATE users SET active = ? WHERE id = ?", [active, user_id])
        return self.get(user_id)

    def record_pull(self, user_id: str, at: datetime) -> None:
        with self._store.cursor() as cur:
            cur.execute("UPDATE users SET last_pull_at = ? WHERE id = ?", [at, user_id])

    def count(self) -> int:
        with self._store.cursor() as cur:
            row = cur.execute("SELECT count(*) FROM users").fetchone()
        return int(row[0]) if row else 0
