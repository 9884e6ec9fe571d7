"""What a caller may use, described for people and agents: the catalog, a table's schema,
a few sample rows. Shared by the HTTP API and the server MCP backend.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from agnes_mcp.audit_trail import AuditTrail
from agnes_mcp.auth.principal import Principal
from agnes_mcp.auth.rbac import AccessControl
from agnes_mcp.catalog_models import (
    CatalogEntry,
    ColumnInfo,
    ColumnStats,
    TableSchema,
    how_to_fetch,
    sample_rows,
)
from agnes_mcp.rails.extra_tables import ExtraTable, kept_description
from agnes_mcp.rails.planner import table_not_found
from agnes_mcp.rails.results import Answer, Provenance, TableRead, cut_by, truncation_for
from agnes_mcp.rails.tables import CatalogTable
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.store.profiles import ProfileRepository
from agnes_mcp.store.sync_state import SyncStateRepository
from agnes_sync.attach_host import READER
from agnes_sync.sql_text import quote_ident, quote_literal

if TYPE_CHECKING:
    from agnes_mcp.query.service import QueryService
    from agnes_mcp.rails.engine import RemoteResult


class CatalogView:
    def __init__(
        self,
        *,
        queries: QueryService,
        access: AccessControl,
        sync_states: SyncStateRepository,
        profiles: ProfileRepository,
        audit: AuditTrail,
    ) -> None:
        self.queries = queries
        self.access = access
        self.sync_states = sync_states
        self.profiles = profiles
        self.audit = audit
        self._lock = threading.Lock()
        self._columns: dict[tuple[object, str], list[ColumnInfo]] = {}
        self._entries: tuple[object, list[CatalogEntry]] | None = None

    def entries(
        self, principal: Principal, search: str | None = None, query_mode: str | None = None
    ) -> list[CatalogEntry]:
        self.access.require_data_scope(principal)
        granted = self.access.granted(principal, ResourceType.TABLE)
        words = (search or "").lower().split()
        return [
            entry
            for entry in self._all_entries()
            if (granted is None or entry.id in granted)
            and (not query_mode or entry.query_mode == query_mode)
            and (not words or all(w in f"{entry.id} {entry.description}".lower() for w in words))
        ]

    def _all_entries(self) -> list[CatalogEntry]:
        """Every table's entry, built once per catalog version (a sync that changes
        freshness rebuilds the analytics DB, which changes the version)."""
        snapshot = self.queries.catalog.current()
        cached = self._entries
        if cached is not None and cached[0] == snapshot.version:
            return cached[1]
        states = self.sync_states.all()
        built = []
        for table in sorted(snapshot.tables.values(), key=lambda t: t.id):
            state = states.get(table.id)
            built.append(
                CatalogEntry(
                    id=table.id,
                    description=table.description,
                    query_mode=table.query_mode,
                    location="remote" if table.is_remote else "local",
                    rows=table.rows,
                    size_bytes=table.size_bytes,
                    freshness=(state.last_success_at if state else None) or table.extracted_at,
                    partition_by=table.partition_by,
                    source=table.source,
                    engine=table.remote.engine if table.remote else None,
                    how_to_fetch=how_to_fetch(table),
                    incomplete=table.incomplete,
                )
            )
        self._entries = (snapshot.version, built)
        return built

    def table(self, principal: Principal, table_id: str) -> CatalogTable:
        """A table the caller may use, or the refusal an agent can act on."""
        self.access.require_data_scope(principal)
        snapshot = self.queries.catalog.current()
        table = snapshot.tables.get(table_id.lower())
        # not granted reads as not there: the catalog does not list it either
        if table is None or not self.access.can_access(principal, ResourceType.TABLE, table.id):
            raise table_not_found(table_id, [e.id for e in self.entries(principal)])
        return table

    def schema(self, principal: Principal, table_id: str) -> TableSchema:
        table = self.table(principal, table_id)
        return TableSchema(
            table=table.id,
            description=table.description,
            query_mode=table.query_mode,
            rows=table.rows,
            partition_by=table.partition_by,
            columns=self._columns_of(table),
            notes=[note] if (note := table.incomplete_note()) else [],
        )

    def _columns_of(self, table: CatalogTable) -> list[ColumnInfo]:
        version = self.queries.catalog.current().version
        key = (version, table.id)
        with self._lock:
            cached = self._columns.get(key)
        if cached is not None:
            return cached
        profile = self.profiles.get(table.id)
        stats = {c["name"]: c for c in profile.columns} if profile else {}
        if table.is_remote:
            engine = self.queries.engine_for(table, version)
            described: list[tuple[str, str, bool | None]] = [
                (c.name, c.type, c.nullable) for c in engine.describe(table)
            ]
        else:
            described = _parquet_columns(list(table.files))
        columns = [
            ColumnInfo(
                name=name,
                type=kind,
                nullable=nullable,
                stats=ColumnStats(
                    null_share=stats[name].get("null_share"),
                    distinct_estimate=stats[name].get("distinct_estimate"),
                    min=stats[name].get("min"),
                    max=stats[name].get("max"),
                )
                if name in stats
                else None,
            )
            for name, kind, nullable in described
        ]
        with self._lock:
            if len(self._columns) > 10_000:
                self._columns.clear()
            self._columns[key] = columns
        return columns

    def describe(self, principal: Principal, table_id: str, rows: int) -> Answer:
        """A few rows of a table: local ones through the rails, remote ones through the
        engine's free preview (never a scan)."""
        sample_rows(rows)
        table = self.table(principal, table_id)
        if not table.is_remote:
            sql = f"SELECT * FROM {quote_ident(table.id)} LIMIT {int(rows)}"
            return self.queries.run(
                principal, sql, limit=rows, mode="local", action="describe"
            ).answer()
        started = time.perf_counter()
        engine = self.queries.engine_for(table, self.queries.catalog.current().version)
        limits = self.queries.limits(rows)
        result = engine.preview(table, rows, limits)
        self.audit.record(
            principal,
            "describe",
            resource=table.id,
            params={"rows": result.table.num_rows, "engine": engine.name},
            started=started,
        )
        return Answer(
            table=result.table,
            row_count=result.table.num_rows,
            truncated=result.truncated,
            reason=cut_by(result.truncated, result.reason),
            truncation=truncation_for(
                result.reason, result.table.num_rows, limits.rows_source, None, limits.bytes
            )
            if result.truncated
            else None,
            # the limits it ran with, as a local table's rows say them (and the JSON
            # answer is cut at the byte cap as JSON too)
            row_limit=limits.rows,
            row_limit_source=limits.rows_source,
            byte_limit=limits.bytes,
            provenance=_preview_provenance(table, result, engine.name),
        )


def _preview_provenance(table: CatalogTable, result: RemoteResult, engine: str) -> Provenance:
    """Named for the engine as a query of the table names it (``duckdb_warehouse``)."""
    return Provenance(
        tables=[
            TableRead(
                id=table.id,
                query_mode=table.query_mode,
                source=table.source,
                freshness=table.extracted_at,
            )
        ],
        engine=f"{engine} (preview)",
        bytes_scanned=0,
        row_count=result.table.num_rows,
        duration_ms=round(result.seconds * 1000, 3),
        fingerprint="preview",
    )


def extra_schema(extra: ExtraTable) -> TableSchema:
    """The columns of a kept result or snapshot: ``query`` reads it like a table, so
    ``schema`` describes it like one (no statistics: nobody profiled it)."""
    described: list[tuple[str, str, bool | None]]
    if isinstance(extra.data, pa.Table):
        with contextlib.closing(READER.cursor()) as con:
            relation = con.from_arrow(extra.data)
            described = [
                (n, str(t), None) for n, t in zip(relation.columns, relation.types, strict=True)
            ]
        rows: int | None = extra.data.num_rows
    else:
        described = _parquet_columns([str(extra.data)])
        rows = pq.read_metadata(extra.data).num_rows
    return TableSchema(
        table=extra.name,
        description=kept_description(extra.kind, extra.source),
        query_mode=extra.kind,
        rows=rows,
        partition_by=None,
        columns=[ColumnInfo(name=n, type=t, nullable=b) for n, t, b in described],
    )


def _parquet_columns(files: list[str]) -> list[tuple[str, str, bool | None]]:
    if not files:
        return []
    listing = "[" + ", ".join(quote_literal(f) for f in files) + "]"
    # On the process's reader DuckDB: a DuckDB of its own would cost ~10 ms to open, more
    # than reading the footers (the first schema call of a table after each sync paid it).
    with contextlib.closing(READER.cursor()) as con:
        rows = con.execute(
            f"DESCRIBE SELECT * FROM read_parquet({listing}, union_by_name = true, "
            "hive_partitioning = false)"
        ).fetchall()
    return [(r[0], r[1], True) for r in rows]
