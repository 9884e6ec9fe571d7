"""What can be queried: registered tables joined with what the analytics DB serves.

A snapshot is rebuilt only when the analytics DB (orchestrator generation) or the
system store (registry, grants) changes, so resolving a query's tables is a dict lookup.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING

from agnes_mcp.rails.tables import CatalogFile, CatalogTable, RemoteLocation, VersionedCatalog

if TYPE_CHECKING:
    from agnes_mcp.store.database import SystemStore
    from agnes_mcp.store.table_registry import TableRegistration, TableRegistryRepository
    from agnes_sync.orchestrator import Orchestrator


class QueryCatalog:
    def __init__(
        self, store: SystemStore, registry: TableRegistryRepository, orchestrator: Orchestrator
    ) -> None:
        self._store = store
        self._registry = registry
        self._orchestrator = orchestrator
        self._lock = threading.Lock()
        self._current: VersionedCatalog | None = None

    def current(self) -> VersionedCatalog:
        version = (self._orchestrator.generation, self._store.generation)
        current = self._current
        if current is not None and current.version == version:
            return current
        with self._lock:
            if self._current is None or self._current.version != version:
                self._current = self._build(version)
            return self._current

    def _build(self, version: tuple[int, int]) -> VersionedCatalog:
        snapshot = VersionedCatalog(version=version)
        registered = {t.id: t for t in self._registry.all()}
        ranges = _partition_ranges(self._store, registered)
        with self._orchestrator.reading() as con:
            served = con.execute(
                "SELECT table_name, source, query_mode, rows, size_bytes, extracted_at, "
                "incomplete FROM _catalog"
            ).fetchall()
            files: dict[str, list[CatalogFile]] = {}
            for name, source, path, part, rows, size, digest in con.execute(
                "SELECT table_name, source, path, part, rows, size_bytes, content_hash "
                "FROM _files ORDER BY table_name, path"
            ).fetchall():
                files.setdefault(name, []).append(
                    CatalogFile(path, _relative(path, source), part, rows, size or 0, digest or "")
                )
            columns: dict[str, list[tuple[str, str]]] = {}
            for name, column, kind in con.execute(
                "SELECT table_name, column_name, data_type FROM duckdb_columns() "
                "WHERE database_name = current_database() AND schema_name = 'main' "
                "AND NOT starts_with(table_name, '_') ORDER BY table_name, column_index"
            ).fetchall():
                columns.setdefault(name, []).append((column, kind))
            remotes = {
                r[0]: RemoteLocation(*r[1:])
                for r in con.execute(
                    "SELECT table_name, source, alias, engine, url, token_env, remote_name "
                    "FROM _remote_tables"
                ).fetchall()
            }
        for name, source, mode, rows, size, extracted_at, incomplete in served:
            registration = registered.get(name)
            if registration is None or registration.source_type != source:
                continue  # only registered tables, from their registered source, are queryable
            table = CatalogTable(
                id=name,
                description=registration.description,
                query_mode=mode,
                source=source,
                rows=rows,
                size_bytes=size,
                extracted_at=extracted_at,
                files=tuple(f.path for f in files.get(name, ())),
                remote=remotes.get(name),
                partition_by=registration.partition_by,
                server_only=registration.server_only,
                name=registration.name or name,
                parts=tuple(files.get(name, ())),
                columns=tuple(columns.get(name, ())),
                partition_range=ranges.get(name),
                incomplete=incomplete,
            )
            snapshot.add(table)
        return snapshot


def _relative(path: str, source: str) -> str:
    """``path`` below its extract's ``data/`` folder: ``orders.parquet``,
    ``orders/order_date_month=2026-01/part-0.parquet``."""
    marker = f"/extracts/{source}/data/"
    index = path.rfind(marker)
    return path[index + len(marker) :] if index >= 0 else path.rsplit("/", 1)[-1]


def _partition_ranges(
    store: SystemStore, registered: dict[str, TableRegistration]
) -> dict[str, tuple[str, str]]:
    """(min, max) of each partitioned table's partition column, from its profile."""
    with store.cursor() as cur:
        rows = cur.execute("SELECT table_id, columns FROM table_profiles").fetchall()
    ranges: dict[str, tuple[str, str]] = {}
    for table_id, columns in rows:
        column = registered[table_id].partition_by if table_id in registered else None
        if not column:
            continue
        for profile in json.loads(columns):
            if profile.get("name") == column and profile.get("min") and profile.get("max"):
                ranges[table_id] = (str(profile["min"]), str(profile["max"]))
    return ranges
