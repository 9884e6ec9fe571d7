"""What the rails know of a table: where its data is, its query mode, its warehouse.

Pure data: the server fills it from the analytics DB and the registry
(:mod:`agnes_mcp.query.catalog`), a workspace from the files it pulled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class RemoteLocation:
    source: str
    alias: str
    engine: str  # the registered remote engine's name: 'duckdb', 'bigquery', ...
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
    # (min, max) of partition_by as ISO text, from the last sync's profile; None if unknown
    partition_range: tuple[str, str] | None = None
    # Why its rows are not all its source holds yet (the connector's words: "holds rows
    # imported until ...; the next sync loads the rest"); None when they are.
    incomplete: str | None = None
    # A workspace's copy the last pull failed to refresh: "orders is from the pull of ...:
    # the last pull, at ..., failed (...); run 'agnes pull' to retry". None when fresh.
    stale: str | None = None

    def incomplete_note(self) -> str | None:
        """ "orders is incomplete: ...", said by every answer that reads it."""
        return None if self.incomplete is None else f"{self.id} is incomplete: {self.incomplete}"

    def holds(self) -> str | None:
        """ "orders holds order_date from 2024-01-01 to 2026-10-31", when known."""
        if self.partition_by is None or self.partition_range is None:
            return None
        low, high = self.partition_range
        return f"{self.id} holds {self.partition_by} from {low} to {high}."

    @property
    def is_remote(self) -> bool:
        return self.query_mode == "remote"


@dataclass
class VersionedCatalog:
    """The queryable tables at one catalog version (analytics DB generation, store
    generation); rebuilt only when either changes."""

    version: tuple[int, int]
    tables: dict[str, CatalogTable] = field(default_factory=dict)
    # every spelling of a remote table's warehouse path -> table id
    remote_paths: dict[tuple[str, ...], str] = field(default_factory=dict)

    def add(self, table: CatalogTable) -> None:
        """Hold ``table``; a remote one is also found by every spelling of its warehouse
        path: ``schema.table``, ``catalog.schema.table`` and the same behind the source's
        alias (``bq.dataset.table``, ``wh.main.table``)."""
        self.tables[table.id] = table
        if table.remote is None:
            return
        parts = table.remote.parts
        alias = table.remote.alias.lower()
        for start in range(len(parts)):
            suffix = parts[start:]
            if len(suffix) >= 2:
                self.remote_paths[suffix] = table.id
            if len(suffix) <= 3 and alias:
                self.remote_paths[(alias, *suffix)] = table.id

    def by_remote_path(self, parts: tuple[str, ...]) -> CatalogTable | None:
        table_id = self.remote_paths.get(tuple(p.lower() for p in parts))
        return self.tables.get(table_id) if table_id else None
