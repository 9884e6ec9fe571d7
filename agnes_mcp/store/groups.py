"""Groups and who is in them.

Membership rows carry the writer that made them (``admin``, ``google_sync``,
``system_seed``); each writer adds and removes only its own rows, so a Google
group sync never undoes what an admin set by hand, and the other way round.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

import duckdb
from pydantic import BaseModel

from agnes_mcp.builtin_groups import ADMIN_GROUP_ID, EVERYONE_GROUP_ID
from agnes_mcp.errors import (
    GroupExists,
    GroupNotFound,
    InvalidRequest,
    LastAdmin,
    MembershipNotFound,
    SystemGroupImmutable,
    UserNotFound,
)
from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.ids import as_utc, new_id, utcnow
from agnes_mcp.store.tokens import revoke_admin_scoped_on_leaving_admin
from agnes_mcp.store.users import active_admins

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")


class MembershipSource(StrEnum):
    ADMIN = "admin"
    GOOGLE_SYNC = "google_sync"
    SYSTEM_SEED = "system_seed"


class Group(BaseModel):
    id: str
    name: str
    description: str
    is_system: bool
    created_at: datetime
    member_count: int = 0


class Membership(BaseModel):
    user_id: str
    email: str
    group_id: str
    source: MembershipSource
    added_by: str | None
    added_at: datetime


_GROUP_SELECT = """
SELECT g.id, g.name, g.description, g.is_system, g.created_at,
       CASE WHEN g.id = 'everyone' THEN (SELECT count(*) FROM users)
            ELSE (SELECT count(DISTINCT m.user_id) FROM user_group_members m
                  WHERE m.group_id = g.id)
       END AS member_count
FROM user_groups g
"""


def _group(row: tuple[Any, ...]) -> Group:
    return Group(
        id=row[0],
        name=row[1],
        description=row[2],
        is_system=row[3],
        created_at=as_utc(row[4]),
        member_count=int(row[5]),
    )


class GroupRepository:
    def __init__(self, store: SystemStore) -> None:
        self._store = store
        self._names: tuple[int, dict[str, str]] = (-1, {})

    def names(self) -> dict[str, str]:
        """Group id -> name, from memory until the store changes (used on hot paths)."""
        generation, names = self._names
        if generation != self._store.generation:
            generation = self._store.generation
            with self._store.cursor() as cur:
                names = dict(cur.execute("SELECT id, name FROM user_groups").fetchall())
            self._names = (generation, names)
        return names

    def add(self, name: str, description: str = "") -> Group:
        cleaned = name.strip()
        if not _NAME.match(cleaned):
            raise InvalidRequest(
                f"'{name}' is not a valid group name.",
                hint="Use 1-64 letters, digits, spaces, '.', '_', '-', starting alphanumeric.",
            )
        if self.by_name(cleaned) is not None:
            raise GroupExists(f"A group named '{cleaned}' already exists.")
        group_id = new_id("grp")
        try:
            with self._store.transaction() as cur:
                cur.execute(
                    "INSERT INTO user_groups (id, name, description, is_system, created_at) "
                    "VALUES (?, ?, ?, FALSE, ?)",
                    [group_id, cleaned, description, utcnow()],
                )
        except duckdb.ConstraintException:
            raise GroupExists(f"A group named '{cleaned}' already exists.") from None
        return self.get(group_id)

    def get(self, group_id: str) -> Group:
        with self._store.cursor() as cur:
            row = cur.execute(_GROUP_SELECT + " WHERE g.id = ?", [group_id]).fetchone()
        if row is None:
            raise GroupNotFound(f"No group with id '{group_id}'.")
        return _group(row)

    def by_name(self, name: str) -> Group | None:
        with self._store.cursor() as cur:
            row = cur.execute(
                _GROUP_SELECT + " WHERE lower(g.name) = lower(?)", [name.strip()]
            ).fetchone()
        return _group(row) if row else None

    def find(self, ref: str) -> Group:
        """A group by id or (case-insensitive) name."""
        group = self.by_name(ref)
        if group is not None:
            return group
        try:
            return self.get(ref)
        except GroupNotFound:
            raise GroupNotFound(f"No group with name or id '{ref}'.") from None

    def all(self) -> list[Group]:
        with self._store.cursor() as cur:
            rows = cur.execute(
                _GROUP_SELECT + " ORDER BY NOT g.is_system, lower(g.name)"
            ).fetchall()
        return [_group(r) for r in rows]

    def delete(self, group_id: str) -> None:
        """Delete a group with its memberships and grants (never a system group)."""
        with self._store.writing():
            group = self.get(group_id)
            if group.is_system:
                raise SystemGroupImmutable(f"The built-in group '{group.name}' cannot be deleted.")
            with self._store.transaction() as cur:
                cur.execute("DELETE FROM user_group_members WHERE group_id = ?", [group_id])
                cur.execute("DELETE FROM resource_grants WHERE group_id = ?", [group_id])
                cur.execute("DELETE FROM user_groups WHERE id = ?", [group_id])

    # --- memberships -----------------------------------------------------------------

    def members(self, group_id: str) -> list[Membership]:
        self.get(group_id)
        return self._memberships("WHERE m.group_id = ?", [group_id])

    def all_members(self) -> list[Membership]:
        """Every membership of every group, in one read (by e-mail, then writer): the
        admin's lists of users and groups read it once, not once per group."""
        return self._memberships("", [])

    def _memberships(self, where: str, params: list[Any]) -> list[Membership]:
        with self._store.cursor() as cur:
            rows = cur.execute(
                "SELECT m.user_id, u.email, m.group_id, m.source, m.added_by, m.added_at "
                f"FROM user_group_members m JOIN users u ON u.id = m.user_id {where} "
                "ORDER BY u.email, m.source",
                params,
            ).fetchall()
        return [
            Membership(
                user_id=r[0],
                email=r[1],
                group_id=r[2],
                source=MembershipSource(r[3]),
                added_by=r[4],
                added_at=as_utc(r[5]),
            )
            for r in rows
        ]

    def add_member(
        self,
        group_id: str,
        user_id: str,
        source: MembershipSource = MembershipSource.ADMIN,
        *,
        added_by: str | None = None,
    ) -> None:
        """Add a membership row for ``source``; adding an existing one is a no-op."""
        if group_id == EVERYONE_GROUP_ID:
            raise SystemGroupImmutable(
                "Every user is in Everyone; members cannot be added by hand."
            )
        with self._store.writing():  # group and user must still exist at insert
            self.get(group_id)
            with self._store.cursor() as cur:
                user = cur.execute("SELECT 1 FROM users WHERE id = ?", [user_id]).fetchone()
            if user is None:
                raise UserNotFound(f"No user with id '{user_id}'.")
            with self._store.transaction() as cur:
                cur.execute(
                    "INSERT INTO user_group_members "
                    "(user_id, group_id, source, added_by, added_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [user_id, group_id, source.value, added_by, utcnow()],
                )

    def remove_member(
        self, group_id: str, user_id: str, source: MembershipSource = MembershipSource.ADMIN
    ) -> list[str]:
        """Remove only ``source``'s row; rows other writers made stay.

        The last active admin cannot be removed from Admin. A user who leaves Admin loses
        their admin-scoped tokens (revoked in the same transaction): the ids are returned."""
        if group_id == EVERYONE_GROUP_ID:
            raise SystemGroupImmutable("Every user is in Everyone; members cannot be removed.")
        with self._store.writing():
            with self._store.cursor() as cur:
                rows = cur.execute(
                    "SELECT source FROM user_group_members WHERE group_id = ? AND user_id = ?",
                    [group_id, user_id],
                ).fetchall()
            sources = {r[0] for r in rows}
            if source.value not in sources:
                raise MembershipNotFound(
                    f"User '{user_id}' has no '{source.value}' membership in group '{group_id}'.",
                    hint="See the group's members with 'agnes admin group members GROUP'.",
                    details={"sources": sorted(sources)},  # the memberships it has there
                )
            leaves_group = sources == {source.value}
            if (
                group_id == ADMIN_GROUP_ID
                and leaves_group
                and active_admins(self._store) > 0
                and active_admins(self._store, excluding=user_id) == 0
            ):
                raise LastAdmin("This is the last active admin; removing it would lock admins out.")
            with self._store.transaction() as cur:
                cur.execute(
                    "DELETE FROM user_group_members "
                    "WHERE group_id = ? AND user_id = ? AND source = ?",
                    [group_id, user_id, source.value],
                )
                if group_id != ADMIN_GROUP_ID:
                    return []
                return revoke_admin_scoped_on_leaving_admin(cur, user_id, utcnow())

    def group_ids_of(self, user_id: str) -> frozenset[str]:
        """Every group the user is in, through any writer; always includes Everyone."""
        with self._store.cursor() as cur:
            rows = cur.execute(
                "SELECT DISTINCT group_id FROM user_group_members WHERE user_id = ?", [user_id]
            ).fetchall()
        return frozenset({EVERYONE_GROUP_ID, *(r[0] for r in rows)})


def is_admin_group(group_id: str) -> bool:
    return group_id == ADMIN_GROUP_ID
