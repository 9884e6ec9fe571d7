"""Users of the server."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import duckdb
from pydantic import BaseModel

from agnes_mcp.builtin_groups import ADMIN_GROUP_ID, EVERYONE_GROUP_ID
from agnes_mcp.errors import InvalidRequest, LastAdmin, UserExists, UserNotFound
from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.ids import as_utc, new_id, utcnow

# ASCII only, no spaces, quotes, slashes or control characters: an address is also a
# path segment (/api/admin/users/{email}) and is shown in terminals.
_EMAIL = re.compile(
    r"^[a-z0-9][a-z0-9._%+-]{0,63}@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$"
)
_COLUMNS = "id, email, name, active, created_at, last_pull_at"
# Where a user's uses are kept (table, its user column, the time of its last use): the
# latest of them all is when the user was last seen.
_SEEN = (
    ("users", "id", "last_pull_at"),
    ("web_sessions", "user_id", "last_seen_at"),
    ("personal_access_tokens", "user_id", "last_used_at"),
    ("oauth_grants", "user_id", "last_used_at"),
)


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


def active_admins(store: SystemStore, *, excluding: str | None = None) -> int:
    """Active users in the Admin group, optionally not counting ``excluding``."""
    with store.cursor() as cur:
        row = cur.execute(
            "SELECT count(DISTINCT u.id) FROM users u "
            "JOIN user_group_members m ON m.user_id = u.id "
            "WHERE m.group_id = ? AND u.active AND u.id IS DISTINCT FROM ?",
            [ADMIN_GROUP_ID, excluding],
        ).fetchone()
    return int(row[0]) if row else 0


def is_admin(store: SystemStore, user_id: str) -> bool:
    with store.cursor() as cur:
        row = cur.execute(
            "SELECT 1 FROM user_group_members WHERE group_id = ? AND user_id = ? LIMIT 1",
            [ADMIN_GROUP_ID, user_id],
        ).fetchone()
    return row is not None


def normalise_email(email: str) -> str:
    cleaned = email.strip().lower()
    if len(cleaned) > 254 or not _EMAIL.fullmatch(cleaned):
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
        with self._store.writing():
            user = self.get(user_id)
            if (
                not active
                and user.active
                and is_admin(self._store, user_id)
                and active_admins(self._store, excluding=user_id) == 0
            ):
                raise LastAdmin(
                    "This is the last active admin; deactivating it would lock admins out."
                )
            with self._store.transaction() as cur:
                cur.execute("UPDATE users SET active = ? WHERE id = ?", [active, user_id])
        return self.get(user_id)

    def record_pull(self, user_id: str, at: datetime) -> None:
        with self._store.writer() as cur:
            cur.execute("UPDATE users SET last_pull_at = ? WHERE id = ?", [at, user_id])

    def last_seen(self, user_id: str | None = None) -> dict[str, datetime]:
        """When each user (or only ``user_id``) was last seen, in one read whatever the
        number of users: the latest of their web sessions' last use (a sign-in counts),
        their personal access tokens' and OAuth grants' last use, and their last pull.
        A user never seen is not in the result. Read only: the uses are the ones the
        write-behind has flushed (every few seconds), so no request writes anything more."""
        sources = [
            f"SELECT {who} AS user_id, {at} AS seen_at FROM {table} WHERE {at} IS NOT NULL"
            + ("" if user_id is None else f" AND {who} = ?")
            for table, who, at in _SEEN
        ]
        params = [] if user_id is None else [user_id] * len(sources)
        query = f"SELECT user_id, max(seen_at) FROM ({' UNION ALL '.join(sources)}) GROUP BY 1"
        with self._store.cursor() as cur:
            rows = cur.execute(query, params).fetchall()
        return {row[0]: as_utc(row[1]) for row in rows}

    def count(self) -> int:
        with self._store.cursor() as cur:
            row = cur.execute("SELECT count(*) FROM users").fetchone()
        return int(row[0]) if row else 0
