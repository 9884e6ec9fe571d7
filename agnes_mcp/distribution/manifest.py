"""Building a caller's manifest from state (the catalog snapshot and grants), never by
reading parquet. Each table's entry is serialised once per catalog version; a request
joins the entries of the tables the caller is granted."""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import TYPE_CHECKING

from agnes_mcp import __version__
from agnes_mcp.auth.principal import Principal
from agnes_mcp.auth.rbac import AccessControl
from agnes_mcp.rails.tables import CatalogTable
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.store.sync_state import SyncStateRepository
from agnes_mcp.store.write_behind import WriteBehind
from agnes_sync.hashing import new_hasher
from agnes_sync.manifest import (
    API_VERSION,
    ManifestColumn,
    ManifestPart,
    ManifestRemote,
    ManifestTable,
    table_hash,
)

if TYPE_CHECKING:
    from agnes_mcp.query.service import QueryService


class ManifestBuilder:
    def __init__(
        self,
        *,
        queries: QueryService,
        access: AccessControl,
        sync_states: SyncStateRepository,
        write_behind: WriteBehind,
    ) -> None:
        self.queries = queries
        self.access = access
        self.sync_states = sync_states
        self.write_behind = write_behind
        self._lock = threading.Lock()
        self._cached: tuple[object, dict[str, str], dict[str, str]] | None = None

    def _entries(self) -> tuple[dict[str, str], dict[str, str]]:
        """(local entries, remote entries) as JSON text by table id, for this version."""
        snapshot = self.queries.catalog.current()
        cached = self._cached
        if cached is not None and cached[0] == snapshot.version:
            return cached[1], cached[2]
        states = self.sync_states.all()
        local: dict[str, str] = {}
        remote: dict[str, str] = {}
        for table in snapshot.tables.values():
            state = states.get(table.id)
            updated = (state.last_success_at if state else None) or table.extracted_at
            if table.is_remote:
                remote[table.id] = _remote(table).model_dump_json()
            elif not table.server_only:
                local[table.id] = _local(table, updated).model_dump_json(by_alias=True)
        with self._lock:
            self._cached = (snapshot.version, local, remote)
        return local, remote

    def build(self, principal: Principal) -> tuple[str, str]:
        """The caller's manifest as JSON text and its ETag (a hash of what it lists, not of
        when it was made); records the pull (off the request path)."""
        self.access.require_data_scope(principal)
        granted = self.access.granted(principal, ResourceType.TABLE)
        local, remote = self._entries()

        def mine(entries: dict[str, str]) -> str:
            ids = sorted(i for i in entries if granted is None or i in granted)
            return "[" + ",".join(entries[i] for i in ids) + "]"

        tables, remote_tables = mine(local), mine(remote)
        hasher = new_hasher()
        for piece in (principal.email, tables, remote_tables):
            hasher.update(piece.encode())
            hasher.update(b"\0")
        etag = f"{API_VERSION}-{hasher.hexdigest()[:40]}"
        now = dt.datetime.now(dt.UTC)
        self.write_behind.pulled(principal.user_id, now)
        head = json.dumps(
            {
                "api_version": API_VERSION,
                "server_version": __version__,
                "generated_at": now.isoformat(),
                "user": principal.email,
            }
        )[:-1]
        return f'{head},"tables":{tables},"remote_tables":{remote_tables}}}', etag


def _local(table: CatalogTable, updated: dt.datetime | None) -> ManifestTable:
    parts = [
        ManifestPart(
            path=f.relative, size=f.size_bytes, hash=f.content_hash, rows=f.rows, part=f.part
        )
        for f in table.parts
    ]
    return ManifestTable.model_validate(
        {
            "id": table.id,
            "name": table.name or table.id,
            "description": table.description,
            "query_mode": table.query_mode,
            "source_type": table.source,
            "rows": table.rows,
            "size_bytes": sum(p.size for p in parts),
            "schema": [ManifestColumn(name=n, type=t) for n, t in table.columns],
            "updated": updated,
            "hash": table_hash(parts),
            "partition_by": table.partition_by,
            "parts": parts,
            "incomplete": table.incomplete,
        }
    )


def _remote(table: CatalogTable) -> ManifestRemote:
    return ManifestRemote.model_validate(
        {
            "id": table.id,
            "name": table.name or table.id,
            "description": table.description,
            "query_mode": table.query_mode,
            "source_type": table.source,
            "engine": table.remote.engine if table.remote else "remote",
            "rows": table.rows,
            "size_bytes": table.size_bytes,
            "partition_by": table.partition_by,
            "alias": table.remote.alias if table.remote else None,
            "remote_name": table.remote.remote_name if table.remote else None,
            "partition_range": list(table.partition_range) if table.partition_range else None,
        }
    )
