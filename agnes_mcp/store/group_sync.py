"""The Google group sync's writes: a user's ``google_sync`` memberships, replaced in one
transaction together with the outcome row in ``group_sync_status``.

Rows other writers made (``admin``, ``system_seed``) are never read for removal nor
touched. A failed read of the Directory API only updates the status row, so the previous
memberships stay as they were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
from pydantic import BaseModel

from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
from agnes_mcp.errors import UserNotFound
from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.groups import MembershipSource
from agnes_mcp.store.ids import as_utc, new_id
from agnes_mcp.store.tokens import revoke_admin_scoped_on_leaving_admin

_SOURCE = MembershipSource.GOOGLE_SYNC.value


@dataclass(frozen=True)
class WantedGroup:
    """An Agnes group a user should be in through the sync: by id (``Admin``) or by name
    (found case-insensitively, or created)."""

    google_email: str
    group_id: str | None = None
    name: str | None = None
    # the name had to be changed from the e-mail's local part ('o'brien+ops' ->
    # 'o-brien-ops'): it joins only the group synced from this very Google group
    renamed: bool = False

    @property
    def key(self) -> str:
        return self.group_id or (self.name or "").lower()


class GroupSyncStatus(BaseModel):
    """The outcome of a user's last group sync (what /me and the admin pages show)."""

    user_id: str
    synced_at: datetime
    outcome: str  # ok | failed
    error: str | None
    groups: int | None


@dataclass(frozen=True)
class AppliedSync:
    """What one replacement changed, by Agnes group name."""

    groups: list[str]
    added: list[str]
    removed: list[str]
    created: list[str]
    skipped: list[str] = field(default_factory=list)  # Google groups not joined, with why
    kept: list[str] = field(default_factory=list)  # removals not made, with why
    revoked_tokens: list[str] = field(default_factory=list)  # admin tokens ended by leaving Admin


_SYNCED_FROM = "Synced from Google group "


def synced_from(google_email: str) -> str:
    """The description of the Agnes group a sync creates for a Google group."""
    return f"{_SYNCED_FROM}{google_email}"


def origin_of(description: str) -> str | None:
    """The Google group's e-mail a group was created for by the sync (its description as
    :func:`synced_from` wrote it), or ``None`` for a group made otherwise."""
    return description[len(_SYNCED_FROM) :] if description.startswith(_SYNCED_FROM) else None


def refusal(target: WantedGroup, name: str, description: str) -> str | None:
    """Why ``target`` may not join the existing group ``name`` (described so), or ``None``.

    An Agnes group belongs to the Google group it was made for: a Google group whose name
    had to be changed joins only the group made for it, and a group made for such a Google
    group is joined by no other (the real ``finance@`` joined the group "'finance@", which
    any employee may create, had made first, and shared its grants). Exact names join
    any other group of that name, as documented (one group for ``finance@`` of two domains,
    or one an admin made to grant it)."""
    origin = origin_of(description)
    if target.renamed:
        if origin == target.google_email:
            return None
        return (
            f"{target.google_email}: its name had to be changed to '{target.name}', and "
            f"the existing group '{name}' was not synced from it"
        )
    if origin is not None and origin.split("@", 1)[0] != (target.name or "").lower():
        return (
            f"{target.google_email}: the existing group '{name}' was made for the Google "
            f"group {origin}, whose name had to be changed (an admin: rename or remove that "
            f"Google group, then delete the Agnes group '{name}'; the next sync makes it anew)"
        )
    return None


class GroupSyncRepository:
    def __init__(self, store: SystemStore) -> None:
        self._store = store

    def apply(self, user_id: str, wanted: Sequence[WantedGroup], at: datetime) -> AppliedSync:
        """Make ``wanted`` the user's ``google_sync`` memberships (creating missing groups)
        and record ``ok``; all in one transaction, so either all of it lands or none."""
        with self._store.transaction() as cur:
            if cur.execute("SELECT 1 FROM users WHERE id = ?", [user_id]).fetchone() is None:
                raise UserNotFound(f"No user with id '{user_id}'.")
            described: dict[str, str] = {}
            by_name: dict[str, tuple[str, str, bool]] = {}
            for gid, name, system, description in cur.execute(
                "SELECT id, name, is_system, description FROM user_groups"
            ).fetchall():
                by_name[str(name).lower()] = (gid, str(name), bool(system))
                described[gid] = str(description or "")
            names = {gid: name for gid, name, _ in by_name.values()}
            want: dict[str, str] = {}  # group id -> name
            created: list[str] = []
            skipped: list[str] = []
            for target in wanted:
                if target.group_id is not None:
                    want[target.group_id] = names.get(target.group_id, target.group_id)
                    continue
                name = target.name or ""
                found = by_name.get(name.lower())
                if found is not None and found[2]:
                    skipped.append(
                        f"{target.google_email}: maps to the built-in group '{found[1]}'"
                    )
                    continue
                origin = synced_from(target.google_email)
                why = refusal(target, found[1], described[found[0]]) if found else None
                if why is not None:
                    skipped.append(why)
                    continue
                if found is None:
                    gid = new_id("grp")
                    cur.execute(
                        "INSERT INTO user_groups (id, name, description, is_system, created_at) "
                        "VALUES (?, ?, ?, FALSE, ?)",
                        [gid, name, origin, at],
                    )
                    described[gid] = origin
                    found = (gid, name, False)
                    by_name[name.lower()] = found
                    names[gid] = name
                    created.append(name)
                want[found[0]] = found[1]
            have = {
                r[0]
                for r in cur.execute(
                    "SELECT group_id FROM user_group_members WHERE user_id = ? AND source = ?",
                    [user_id, _SOURCE],
                ).fetchall()
            }
            remove = have - want.keys()
            add = want.keys() - have
            kept: list[str] = []
            if ADMIN_GROUP_ID in remove and _last_admin(cur, user_id):
                remove.discard(ADMIN_GROUP_ID)
                want[ADMIN_GROUP_ID] = names.get(ADMIN_GROUP_ID, "Admin")
                kept.append("Admin: this is the last active admin")
            for gid in sorted(remove):
                cur.execute(
                    "DELETE FROM user_group_members "
                    "WHERE user_id = ? AND group_id = ? AND source = ?",
                    [user_id, gid, _SOURCE],
                )
            revoked = (
                revoke_admin_scoped_on_leaving_admin(cur, user_id, at)
                if ADMIN_GROUP_ID in remove
                else []
            )
            for gid in sorted(add):
                cur.execute(
                    "INSERT INTO user_group_members "
                    "(user_id, group_id, source, added_by, added_at) VALUES (?, ?, ?, NULL, ?)",
                    [user_id, gid, _SOURCE, at],
                )
            _upsert_status(cur, user_id, at, "ok", None, len(want))
        return AppliedSync(
            groups=sorted(want.values(), key=str.lower),
            added=sorted((want[g] for g in add), key=str.lower),
            removed=sorted((names.get(g, g) for g in remove), key=str.lower),
            created=created,
            skipped=skipped,
            kept=kept,
            revoked_tokens=revoked,
        )

    def record_failure(self, user_id: str, at: datetime, error: str) -> None:
        """Record a failed sync; memberships and the last known group count stay."""
        with self._store.transaction() as cur:
            _upsert_status(cur, user_id, at, "failed", error, None)

    def status(self, user_id: str) -> GroupSyncStatus | None:
        with self._store.cursor() as cur:
            row = cur.execute(
                "SELECT user_id, synced_at, outcome, error, groups FROM group_sync_status "
                "WHERE user_id = ?",
                [user_id],
            ).fetchone()
        return _status(row) if row else None

    def all(self) -> dict[str, GroupSyncStatus]:
        with self._store.cursor() as cur:
            rows = cur.execute(
                "SELECT user_id, synced_at, outcome, error, groups FROM group_sync_status"
            ).fetchall()
        return {r[0]: _status(r) for r in rows}

    def memberships(self, user_id: str) -> list[str]:
        """Names of the groups the user is in through the sync."""
        with self._store.cursor() as cur:
            rows = cur.execute(
                "SELECT g.name FROM user_group_members m JOIN user_groups g ON g.id = m.group_id "
                "WHERE m.user_id = ? AND m.source = ? ORDER BY lower(g.name)",
                [user_id, _SOURCE],
            ).fetchall()
        return [r[0] for r in rows]


def _status(row: tuple[Any, ...]) -> GroupSyncStatus:
    return GroupSyncStatus(
        user_id=row[0],
        synced_at=as_utc(row[1]),
        outcome=row[2],
        error=row[3],
        groups=row[4],
    )


def _upsert_status(
    cur: duckdb.DuckDBPyConnection,
    user_id: str,
    at: datetime,
    outcome: str,
    error: str | None,
    groups: int | None,
) -> None:
    """One row per user; a failure keeps the group count of the last success."""
    cur.execute(
        "INSERT INTO group_sync_status (user_id, synced_at, outcome, error, groups) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
        "synced_at = excluded.synced_at, outcome = excluded.outcome, error = excluded.error, "
        "groups = coalesce(excluded.groups, group_sync_status.groups)",
        [user_id, at, outcome, error, groups],
    )


def _last_admin(cur: duckdb.DuckDBPyConnection, user_id: str) -> bool:
    """Would dropping this user's synced Admin row leave no active admin at all?"""
    other_rows = cur.execute(
        "SELECT 1 FROM user_group_members WHERE user_id = ? AND group_id = ? AND source <> ?",
        [user_id, ADMIN_GROUP_ID, _SOURCE],
    ).fetchone()
    if other_rows is not None:
        return False
    row = cur.execute(
        "SELECT count(DISTINCT u.id) FROM users u JOIN user_group_members m ON m.user_id = u.id "
        "WHERE m.group_id = ? AND u.active AND u.id <> ?",
        [ADMIN_GROUP_ID, user_id],
    ).fetchone()
    return (int(row[0]) if row else 0) == 0
