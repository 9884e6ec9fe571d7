"""Grants: a group may use a resource (a table, a metric, a plugin, ...)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import duckdb
from pydantic import BaseModel

from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
from agnes_mcp.errors import (
    GrantExists,
    GrantNotFound,
    GroupNotFound,
    ResourceNotFound,
    SystemGroupImmutable,
)
from agnes_mcp.resource_types import ResourceType, spec_for
from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.ids import as_utc, new_id, utcnow


class Grant(BaseModel):
    id: str
    group_id: str
    group_name: str
    resource_type: ResourceType
    resource_id: str
    granted_by: str | None
    granted_at: datetime


_SELECT = (
    "SELECT r.id, r.group_id, g.name, r.resource_type, r.resource_id, r.granted_by, r.granted_at "
    "FROM resource_grants r JOIN user_groups g ON g.id = r.group_id"
)


def _grant(row: tuple[Any, ...]) -> Grant:
    return Grant(
        id=row[0],
        group_id=row[1],
        group_name=row[2],
        resource_type=ResourceType(row[3]),
        resource_id=row[4],
        granted_by=row[5],
        granted_at=as_utc(row[6]),
    )


class GrantRepository:
    def __init__(self, store: SystemStore) -> None:
        self._store = store

    def add(
        self,
        group_id: str,
        resource_type: ResourceType,
        resource_id: str,
        *,
        granted_by: str | None = None,
    ) -> Grant:
        """Grant a resource that exists (when its kind can tell) to an existing group."""
        spec = spec_for(resource_type)
        if group_id == ADMIN_GROUP_ID and spec.admin_uses_all:
            raise SystemGroupImmutable(
                f"Admin members may use every {spec.label.lower()} already.",
                hint="Grant it to another group; the Admin group is granted only marketplace "
                "plugins (admins get no plugin without a grant).",
            )
        grant_id = new_id("grt")
        with self._store.writing():  # the group and the resource must still exist at insert
            with self._store.cursor() as cur:
                group = cur.execute("SELECT 1 FROM user_groups WHERE id = ?", [group_id]).fetchone()
            if group is None:
                raise GroupNotFound(f"No group with id '{group_id}'.")
            if spec.existing_ids_sql is not None and not self._exists(
                spec.existing_ids_sql, resource_id
            ):
                raise ResourceNotFound(
                    f"There is no {spec.label.lower()} '{resource_id}' to grant.",
                    hint=f"Grant an existing {resource_type.value}; check the id for typos.",
                )
            try:
                with self._store.transaction() as cur:
                    cur.execute(
                        "INSERT INTO resource_grants "
                        "(id, group_id, resource_type, resource_id, granted_by, granted_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        [
                            grant_id,
                            group_id,
                            resource_type.value,
                            resource_id,
                            granted_by,
                            utcnow(),
                        ],
                    )
            except duckdb.ConstraintException:
                raise GrantExists(
                    f"The group already has {resource_type.value} '{resource_id}'."
                ) from None
        return self.get(grant_id)

    def _exists(self, ids_sql: str, resource_id: str) -> bool:
        with self._store.cursor() as cur:
            found = cur.execute(
                f"SELECT 1 FROM ({ids_sql}) AS ids(id) WHERE id = ? LIMIT 1", [resource_id]
            ).fetchone()
        return found is not None

    def get(self, grant_id: str) -> Grant:
        with self._store.cursor() as cur:
            row = cur.execute(_SELECT + " WHERE r.id = ?", [grant_id]).fetchone()
        if row is None:
            raise GrantNotFound(f"No grant with id '{grant_id}'.")
        return _grant(row)

    def delete(self, grant_id: str) -> None:
        with self._store.writing():
            self.get(grant_id)
            with self._store.transaction() as cur:
                cur.execute("DELETE FROM resource_grants WHERE id = ?", [grant_id])

    def all(
        self, *, group_id: str | None = None, resource_type: ResourceType | None = None
    ) -> list[Grant]:
        clauses, params = [], []
        if group_id is not None:
            clauses.append("r.group_id = ?")
            params.append(group_id)
        if resource_type is not None:
            clauses.append("r.resource_type = ?")
            params.append(resource_type.value)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        with self._store.cursor() as cur:
            rows = cur.execute(
                _SELECT + where + " ORDER BY g.name, r.resource_type, r.resource_id", params
            ).fetchall()
        return [_grant(r) for r in rows]

    def resources_of(self, group_ids: Iterable[str]) -> frozenset[tuple[ResourceType, str]]:
        """Every (type, id) granted to any of ``group_ids``."""
        ids = list(group_ids)
        if not ids:
            return frozenset()
        with self._store.cursor() as cur:
            rows = cur.execute(
                "SELECT DISTINCT resource_type, resource_id FROM resource_grants "
                "WHERE list_contains(?, group_id)",
                [ids],
            ).fetchall()
        known = {t.value for t in ResourceType}
        return frozenset((ResourceType(t), rid) for t, rid in rows if t in known)
