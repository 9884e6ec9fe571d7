"""The table registry: every table Agnes serves, where it comes from and how it syncs."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import duckdb
from pydantic import ConfigDict

from agnes_mcp.errors import TableExists, TableNotRegistered
from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.generation_cache import GenerationCache
from agnes_mcp.store.ids import as_utc, utcnow
from agnes_sync.table_spec import TableSpec


class TableRegistration(TableSpec):
    # Frozen: the repository hands the same instances to every caller (see ``all``).
    model_config = ConfigDict(extra="forbid", frozen=True)

    registered_by: str | None = None
    registered_at: datetime


_FIELDS = list(TableSpec.model_fields)
_COLUMNS = ", ".join([*_FIELDS, "registered_by", "registered_at"])


def _registration(row: tuple[Any, ...]) -> TableRegistration:
    values = dict(zip([*_FIELDS, "registered_by", "registered_at"], row, strict=True))
    values["registered_at"] = as_utc(values["registered_at"])
    values["source_options"] = json.loads(values["source_options"] or "{}")
    return TableRegistration(**values)


def _params(spec: TableSpec) -> list[Any]:
    data = spec.model_dump(mode="json")
    if not data["name"]:
        data["name"] = spec.id
    data["source_options"] = json.dumps(data["source_options"])
    return [data[f] for f in _FIELDS]


class TableRegistryRepository:
    def __init__(self, store: SystemStore) -> None:
        self._store = store
        # Every registration while the store is unchanged: building 1,000 validated models
        # from rows costs ~40 ms, which every admin page load and catalog build paid.
        self._all: GenerationCache[str, list[TableRegistration]] = GenerationCache(store, 1)

    def add(self, spec: TableSpec, *, registered_by: str | None = None) -> TableRegistration:
        placeholders = ", ".join("?" for _ in range(len(_FIELDS) + 2))
        try:
            with self._store.transaction() as cur:
                cur.execute(
                    f"INSERT INTO table_registry ({_COLUMNS}) VALUES ({placeholders})",
                    [*_params(spec), registered_by, utcnow()],
                )
        except duckdb.ConstraintException:
            raise TableExists(
                f"A table '{spec.id}' is already registered.",
                hint="Change it with 'agnes admin update-table', or pick another name.",
            ) from None
        return self.get(spec.id)

    def get(self, table_id: str) -> TableRegistration:
        with self._store.cursor() as cur:
            row = cur.execute(
                f"SELECT {_COLUMNS} FROM table_registry WHERE id = ?", [table_id]
            ).fetchone()
        if row is None:
            raise TableNotRegistered(f"No table '{table_id}' is registered.")
        return _registration(row)

    def all(self) -> list[TableRegistration]:
        """Every registration, by id (read again only once the store changed)."""
        return list(self._all.get("all", self._read_all))

    def _read_all(self) -> list[TableRegistration]:
        with self._store.cursor() as cur:
            rows = cur.execute(f"SELECT {_COLUMNS} FROM table_registry ORDER BY id").fetchall()
        return [_registration(r) for r in rows]

    def update(self, spec: TableSpec) -> TableRegistration:
        assignments = ", ".join(f"{f} = ?" for f in _FIELDS if f != "id")
        params = [p for f, p in zip(_FIELDS, _params(spec), strict=True) if f != "id"]
        with self._store.writing():
            self.get(spec.id)
            with self._store.transaction() as cur:
                cur.execute(
                    f"UPDATE table_registry SET {assignments} WHERE id = ?", [*params, spec.id]
                )
        return self.get(spec.id)

    def delete(self, table_id: str) -> None:
        """Unregister a table and drop the grants that named it."""
        with self._store.writing():
            self.get(table_id)
            with self._store.transaction() as cur:
                cur.execute("DELETE FROM table_registry WHERE id = ?", [table_id])
                cur.execute(
                    "DELETE FROM resource_grants WHERE resource_type = 'table' AND resource_id = ?",
                    [table_id],
                )
                cur.execute("DELETE FROM sync_state WHERE table_id = ?", [table_id])
