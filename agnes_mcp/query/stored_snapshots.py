"""Snapshots kept on the server, per user (``DATA_DIR/snapshots/<user id>/``).

The server MCP backend stores what ``snapshot_create`` fetched here and hands back a
download URL; the user's later ``query`` calls can read it by name. A snapshot whose
source table is no longer granted to its owner is hidden and cannot be read.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from agnes_mcp.auth.principal import Principal
from agnes_mcp.auth.rbac import AccessControl
from agnes_mcp.query.snapshots import Snapshots
from agnes_mcp.rails.extra_tables import ExtraTable
from agnes_mcp.rails.refusals import (
    SNAPSHOT_NAME_TAKEN_HINT,
    QueryRefused,
    SnapshotExists,
    SnapshotInvalid,
    SnapshotQuotaExceeded,
    TableNotFound,
    next_step,
    snapshot_expired,
)
from agnes_mcp.rails.snapshot_spec import SnapshotSpec
from agnes_mcp.resource_types import ResourceType
from agnes_sync.human_size import human_size
from agnes_sync.snapshot_files import (
    SnapshotFiles,
    SnapshotMissing,
    check_new_name,
    check_ttl,
)
from agnes_sync.snapshot_meta import SnapshotMeta

if TYPE_CHECKING:
    from agnes_mcp.query.service import QueryService
    from agnes_mcp.rails.outcome import Outcome


class StoredSnapshots:
    def __init__(
        self,
        *,
        queries: QueryService,
        access: AccessControl,
        root: Path,
        max_bytes_per_user: Callable[[], int] | None = None,
    ) -> None:
        self.queries = queries
        self.access = access
        self.root = root
        self.max_bytes_per_user = max_bytes_per_user  # read at each create (a setting)
        # One create at a time per user: the bound is checked against what the user's
        # earlier creates stored, so creates at once cannot pass it together.
        self._guard = threading.Lock()
        self._creating: dict[str, threading.Lock] = {}
        # What each user's folder held when last read, for the queries (which name their
        # snapshots on every call): read again after a change made here (the generation
        # moves) or found on disk (the folder's mtime moves). Expired ones stay listed
        # and are filtered by time; only a listing, create or drop deletes files.
        self._kept: dict[str, tuple[int, int, list[SnapshotMeta]]] = {}
        self._generation = 0

    def files(self, principal: Principal) -> SnapshotFiles:
        return SnapshotFiles(self.root / principal.user_id)

    def _readable(self, principal: Principal, meta: SnapshotMeta, now: dt.datetime) -> bool:
        access = self.access
        return not meta.expired(now) and access.can_access(
            principal, ResourceType.TABLE, meta.table_id
        )

    def create(
        self, principal: Principal, spec: SnapshotSpec, name: str, ttl_seconds: int | None
    ) -> tuple[SnapshotMeta, Outcome]:
        with self._guard:
            mine = self._creating.setdefault(principal.user_id, threading.Lock())
        with mine:
            return self._create(principal, spec, name, ttl_seconds)

    def _create(
        self, principal: Principal, spec: SnapshotSpec, name: str, ttl_seconds: int | None
    ) -> tuple[SnapshotMeta, Outcome]:
        name = check_new_name(name)
        check_ttl(ttl_seconds)
        if name in self.queries.catalog.current().tables or name.startswith("result_"):
            raise SnapshotInvalid(
                f"'{name}' is the name of a table (or of kept results); pick another name.",
                hint=SNAPSHOT_NAME_TAKEN_HINT,
            )
        if self.files(principal).get(name) is not None:
            raise SnapshotExists(f"A snapshot named '{name}' exists.", details={"name": name})
        self._check_room(principal)
        prepared, outcome = Snapshots(self.queries).create(principal, spec)
        meta = SnapshotMeta(
            name=name,
            table_id=prepared.table.id,
            select=spec.select,
            where=spec.where,
            order_by=spec.order_by,
            limit=spec.limit,
            sql=prepared.sql,
            created_at=dt.datetime.now(dt.UTC),
            rows=outcome.table.num_rows,
            bytes=0,
            bytes_scanned=outcome.bytes_scanned,
            truncated=outcome.truncated,
            ttl_seconds=ttl_seconds,
        )
        try:
            return self.files(principal).save(outcome.table, meta), outcome
        finally:
            self._changed()

    def _check_room(self, principal: Principal) -> None:
        """Refused once the user's kept snapshots (expired ones pruned first) hold the
        limit: a snapshot's own size is bounded by the query caps, and a user's creates run
        one at a time, so the limit is passed by one snapshot at most."""
        if self.max_bytes_per_user is None:
            return
        limit = self.max_bytes_per_user()
        files = self.files(principal)
        self._prune(files)
        held = sum(m.bytes for m in files.all())
        if held >= limit:
            raise SnapshotQuotaExceeded(
                f"Your snapshots kept on the server hold {human_size(held)}; the limit is "
                f"{human_size(limit)} (max_snapshot_bytes_per_user).",
                next=next_step("snapshot_list"),
                details={"held_bytes": held, "limit_bytes": limit},
            )

    def all(self, principal: Principal) -> list[SnapshotMeta]:
        self.access.require_data_scope(principal)
        now = dt.datetime.now(dt.UTC)
        files = self.files(principal)
        self._prune(files)
        return [m for m in files.all() if self._readable(principal, m, now)]

    def get(self, principal: Principal, name: str) -> SnapshotMeta:
        self.access.require_data_scope(principal)
        meta = self.files(principal).require(name)
        if not self._readable(principal, meta, dt.datetime.now(dt.UTC)):
            raise SnapshotMissing(f"There is no snapshot '{name}' you may read.")
        return meta

    def expired(self, principal: Principal, name: str) -> SnapshotMeta | None:
        """The user's snapshot ``name`` if it is there but past its lifetime (not yet
        pruned), its table still readable: what a query naming it should hear."""
        now = dt.datetime.now(dt.UTC)
        for meta in self._held(principal):
            if meta.name == name.lower() and meta.expired(now):
                allowed = self.access.can_access(principal, ResourceType.TABLE, meta.table_id)
                return meta if allowed else None
        return None

    def missing_said(self, principal: Principal, missing: TableNotFound) -> QueryRefused:
        """``missing`` as the caller should hear it: ``snapshot_expired`` when the name is
        their snapshot past its lifetime (MCP and REST alike), else as it is."""
        name = missing.details.get("table")
        meta = self.expired(principal, name) if isinstance(name, str) else None
        return snapshot_expired(meta) if meta is not None else missing

    def drop(self, principal: Principal, name: str) -> SnapshotMeta:
        self.access.require_data_scope(principal)
        try:
            dropped = self.files(principal).drop(name)
        finally:
            self._changed()
        # a step of the session (session_export repeats it), as taking it is
        self.queries.audit_trail.record(principal, "snapshot.drop", resource=dropped.name)
        return dropped

    def _prune(self, files: SnapshotFiles) -> None:
        if files.prune_expired(dt.datetime.now(dt.UTC)):
            self._changed()

    def _changed(self) -> None:
        with self._guard:
            self._generation += 1

    def _held(self, principal: Principal) -> list[SnapshotMeta]:
        """The user's snapshots as last read, read again only when something changed."""
        files = self.files(principal)
        try:
            stamp = files.root.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        with self._guard:
            generation = self._generation
            kept = self._kept.get(principal.user_id)
        if kept is not None and kept[:2] == (generation, stamp):
            return kept[2]
        held = files.all()
        with self._guard:  # kept only if nothing changed here while it was read
            if self._generation == generation:
                self._kept[principal.user_id] = (generation, stamp, held)
        return held

    def extras(self, principal: Principal) -> dict[str, ExtraTable]:
        """The user's readable snapshots, as tables a local query may name."""
        self.access.require_data_scope(principal)
        files = self.files(principal)
        now = dt.datetime.now(dt.UTC)
        return {
            m.name: ExtraTable(
                m.name, "snapshot", m.table_id, m.created_at, files.data_path(m.name)
            )
            for m in self._held(principal)
            if self._readable(principal, m, now)
        }
