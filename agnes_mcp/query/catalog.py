"""What can be queried: registered tables joined with what the analytics DB serves.

A snapshot is rebuilt only when the analytics DB (orchestrator generation) or the
system store (registry, grants) changes, so resolving a query's tables is a dict lookup.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agnes_mcp.store.database import SystemStore
    from agnes_mcp.store.table_registry import TableRegistryRepository
    from agnes_sync.orchestrator import Orchestrator


@dataclass(frozen=True)
class RemoteLocation:
    source: str
    alias: str
    extension: str  # the engine: 'duckdb', 'bigquery'
    url: str
    token_env: str | None
    remote_name: str  # e.g. "main"."web_sessions" or project.dataset.table

    @property
    def parts(self) -> tuple[str, ...]:
        """The remote name's parts, unquoted and lowercased."""
        return tuple(p.strip('"`').lower() for p in self.remote_name.split("."))


@dataclass(frozen=True)
class CatalogFile:
    """One parquet file of a table: where it is, where a workspace puts it, what it holds."""

    path: str  # absolute, on the server
    relative: str  # under a workspace's .agnes/data/
    part: str | None
    rows: int | None
    size_bytes: int
    content_hash: str


@dataclass(frozen=True)
class CatalogTable:
    id: str
    description: str
    query_mode: str  # local | materialized | remote
    source: str
    rows: int | None
    size_bytes: int | None
    extracted_at: datetime | None
    files: tuple[str, ...] = ()
    remote: RemoteLocation | None = None
    partition_by: str | None = None
    server_only: bool = False
    name: str = ""
    parts: tuple[CatalogFile, ...] = ()
    columns: tuple[tuple[str, str], ...] = ()  # (name, type) of local and materialized tables

    @property
    def is_remote(self) -> bool:
        return self.query_mode == "remote"


@dataclass
class CatalogSnapshot:
    version: tuple[int, int]
    tables: dict[str, CatalogTable] = field(default_factory=dict)
    # every spelling of a remote table's warehouse path -> table id
    remote_paths: dict[tuple[str, ...], str] = field(default_factory=dict)

    def by_remote_path(self, parts: tuple[str, ...]) -> CatalogTable | None:
        table_id = self.remote_paths.get(tuple(p.lower() for p in parts))
        return self.tables.get(table_id) if table_id else None


class QueryCatalog:
    def __init__(
        self, store: SystemStore, registry: TableRegistryRepository, orchestrator: Orchestrator
    ) -> None:
        self._store = store
        self._registry = registry
        self._orchestrator = orchestrator
        self._lock = threading.Lock()
        self._snapshot: CatalogSnapshot | None = None

    def snapshot(self) -> CatalogSnapshot:
        version = (self._orchestrator.generation, self._store.generation)
        current = self._snapshot
        if current is not None and current.version == version:
            return current
        with self._lock:
            if self._snapshot is None or self._snapshot.version != version:
                self._snapshot = self._build(version)
            return self._snapshot

    def _build(self, version: tuple[int, int]) -> CatalogSnapshot:
        snapshot = CatalogSnapshot(version=version)
        registered = {t.id: t for t in self._registry.all()}
        con = self._orchestrator.connect()
        try:
            served = con.execute(
                "SELECT table_name, source, query_mode, rows, size_bytes, extracted_at "
                "FROM _catalog"
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
                    "SELECT table_name, source, alias, extension, url, token_env, remote_name "
                    "FROM _remote_tables"
                ).fetchall()
            }
        finally:
            con.close()
        for name, source, mode, rows, size, extracted_at in served:
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
            )
            snapshot.tables[name] = table
            if table.remote is not None:
                _index_paths(snapshot.remote_paths, table.remote, name)
        return snapshot


def _relative(path: str, source: str) -> str:
    """``path`` below its extract's ``data/`` folder: ``orders.parquet``,
    ``orders/order_date_month=2026-01/part-0.parquet``."""
    marker = f"/extracts/{source}/data/"
    index = path.rfind(marker)
    return path[index + len(marker) :] if index >= 0 else path.rsplit("/", 1)[-1]


def _index_paths(paths: dict[tuple[str, ...], str], remote: RemoteLocation, name: str) -> None:
    """Every spelling of the warehouse path: ``schema.table``, ``catalog.schema.table`` and
    the same behind the source's alias (``bq.dataset.table``, ``wh.main.table``)."""
    parts = remote.parts
    alias = remote.alias.lower()
    for start in range(len(parts)):
        suffix = parts[start:]
        if len(suffix) >= 2:
            paths[suffix] = name
        if len(suffix) <= 3:
            paths[(alias, *suffix)] = name
