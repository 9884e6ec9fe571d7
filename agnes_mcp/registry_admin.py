"""Admin operations on the table registry: one implementation for the REST routes
(``/api/admin/registry*``, ``/api/admin/register-table``, ``/api/sync/*``) and the admin
app's Tables page.

Reads take no principal; every change takes the acting admin and writes an audit row
naming them, after the change succeeded. A change is validated against its source before
anything is stored, so a refused change leaves nothing behind.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, PrivateAttr, ValidationError

from agnes_mcp.auth.principal import Principal
from agnes_mcp.catalog_models import ColumnInfo
from agnes_mcp.errors import InvalidRequest, TableExists, TableNotRegistered
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.services import Services
from agnes_mcp.sources import SourceInfo
from agnes_mcp.store.grants import Grant
from agnes_mcp.store.ids import utcnow
from agnes_mcp.store.profiles import StoredProfile
from agnes_mcp.store.sync_state import SyncRun, SyncState
from agnes_mcp.store.table_registry import TableRegistration
from agnes_mcp.sync_service import SyncResult
from agnes_sync.connector import Capability
from agnes_sync.connector_registry import connector_class
from agnes_sync.contract import ExtractWriter
from agnes_sync.errors import (
    AgnesError,
    ConnectorCapabilityMissing,
    InvalidSchedule,
    SourceNotConfigured,
    SourceTableNotFound,
)
from agnes_sync.schedule import parse_schedule
from agnes_sync.table_spec import TableSpec

NEVER_SYNCED = "never"


# Fields read from the registration when the table is served or scheduled: a change to
# one of them needs no sync. Every other field shapes the data a sync publishes.
READ_WHEN_SERVED = frozenset({"name", "description", "sync_schedule", "server_only"})


class Registered(BaseModel):
    table: TableRegistration
    columns: list[ColumnInfo]
    dry_run: bool
    initial_sync: str | None = Field(default=None, description="'queued' when a sync started.")
    resync: str | None = Field(
        default=None,
        description="An update that changes what the table's data is (its source, mode, "
        "filter, strategy, ...): 'queued' when a sync applying it was started (after the one "
        "in progress, if any); until it ends the table serves the data of the last sync.",
    )
    # The queued sync itself (a registration's first, or an update's), for a caller that
    # shows its outcome (the admin app); not part of the REST answer.
    _first_sync: Future[object] | None = PrivateAttr(default=None)

    @property
    def first_sync(self) -> Future[object] | None:
        """The sync queued at registration or by an update (its result is a SyncResult),
        if any."""
        return self._first_sync


class RegistryEntry(TableRegistration):
    sync: SyncState | None
    next_run: datetime | None

    @property
    def status(self) -> str:
        return self.sync.status if self.sync else NEVER_SYNCED


class SourceTableInfo(BaseModel):
    source_table: str
    bucket: str | None
    suggested_id: str | None
    description: str


class SourceTables(BaseModel):
    source: str
    tables: list[SourceTableInfo]


class TriggerResult(BaseModel):
    results: list[SyncResult] = Field(default_factory=list)
    queued: list[str] = Field(default_factory=list)
    # The queued runs themselves (results: SyncResult), for a caller that shows their
    # outcome (the admin app); not part of the REST answer.
    _runs: list[Future[object]] = PrivateAttr(default_factory=list)

    @property
    def runs(self) -> list[Future[object]]:
        return self._runs


@dataclass(frozen=True)
class RegistryAdmin:
    """The registry as an admin sees it (cheap to build: wrap the server's services)."""

    services: Services

    # --- reads ------------------------------------------------------------------------

    def entries(
        self, *, source: str | None = None, mode: str | None = None, status: str | None = None
    ) -> list[RegistryEntry]:
        """Every registered table with its sync state; each filter given narrows the list
        (``status`` is a sync status: ``never``, ``running``, ``ok`` or ``error``)."""
        states = self.services.sync_states.all()
        found = []
        for table in self.services.registry.all():
            if source is not None and table.source_type != source:
                continue
            if mode is not None and table.query_mode.value != mode:
                continue
            state = states.get(table.id)
            if status is not None and (state.status if state else NEVER_SYNCED) != status:
                continue
            found.append(
                RegistryEntry(
                    **table.model_dump(), sync=state, next_run=self._next_run(table, state)
                )
            )
        return found

    def _next_run(self, table: TableRegistration, state: SyncState | None) -> datetime | None:
        """``SyncService.next_run`` from a state already read (one query for a whole list,
        not one per table)."""
        if not table.sync_schedule:
            return None
        try:
            schedule = parse_schedule(table.sync_schedule)
        except AgnesError:
            return None
        if state is None or state.last_started_at is None:
            now: datetime = self.services.sync.clock()
            return now
        return schedule.next_after(state.last_started_at)

    def get(self, table_id: str) -> TableRegistration:
        return self.services.registry.get(table_id)

    def sources(self) -> list[SourceInfo]:
        return self.services.sources.describe()

    def source_tables(self, source: str) -> SourceTables:
        """The tables source ``source`` offers (its connector's list)."""
        offered = self.services.sources.connector(source).list_tables()
        return SourceTables(
            source=source,
            tables=[
                SourceTableInfo(
                    source_table=t.source_table,
                    bucket=t.bucket,
                    suggested_id=t.suggested_id,
                    description=t.description,
                )
                for t in offered
            ],
        )

    def table_options_model(self, source: str) -> type[BaseModel]:
        """The per-table options model the connector of ``source`` declares."""
        return connector_class(self._source_config(source).connector).TableOptions

    def history(self, table_id: str | None = None, *, limit: int = 50) -> list[SyncRun]:
        """Past sync runs, newest first (``limit`` is clamped to 1..1000)."""
        return self.services.sync_states.history(table_id, limit=max(1, min(limit, 1000)))

    def profile(self, table_id: str) -> StoredProfile | None:
        return self.services.profiles.get(table_id)

    def grants_of(self, table_id: str) -> list[Grant]:
        """The grants naming table ``table_id`` (Admin members may use every table anyway)."""
        return [
            g
            for g in self.services.grants.all(resource_type=ResourceType.TABLE)
            if g.resource_id == table_id
        ]

    # --- changes ----------------------------------------------------------------------

    def register(
        self, admin: Principal, spec: TableSpec, *, dry_run: bool = False, sync: bool = True
    ) -> Registered:
        """Validate ``spec`` against its source and store it (not with ``dry_run``); unless
        ``sync`` is false a first sync is queued."""
        try:
            self.services.registry.get(spec.id)
        except TableNotRegistered:
            pass
        else:
            raise TableExists(
                f"A table '{spec.id}' is already registered.",
                hint="Change it with 'agnes admin update-table', or pick another name.",
                details={"field": "id"},
            )
        columns = self.services.sync.validate(spec)
        if dry_run:
            fields = spec.model_dump()
            fields["name"] = fields["name"] or spec.id
            draft = TableRegistration(**fields, registered_by=admin.user_id, registered_at=utcnow())
            return Registered(table=draft, columns=columns, dry_run=True)
        table = self.services.registry.add(spec, registered_by=admin.user_id)
        self.services.audit.record(
            admin, "registry.register", resource=table.id, params={"source": table.source_type}
        )
        registered = Registered(table=table, columns=columns, dry_run=False)
        if sync:
            registered._first_sync = self.services.sync.enqueue(table.id, "registration")
            registered.initial_sync = "queued"
        return registered

    def update(
        self, admin: Principal, table_id: str, changes: dict[str, Any], *, dry_run: bool = False
    ) -> Registered:
        """Change the fields in ``changes`` (the others keep their value; the id cannot
        change), validated against the source first."""
        if changes.get("id", table_id) != table_id:
            raise InvalidRequest(
                "A table's id cannot change.",
                hint="Register the table under the new id and unregister the old one.",
                details={"field": "id"},
            )
        current = self.services.registry.get(table_id)
        try:
            spec = TableSpec(
                **{
                    **current.model_dump(exclude={"registered_by", "registered_at"}),
                    **changes,
                    "id": table_id,
                }
            )
        except ValidationError as exc:  # the changes are the caller's: a 422, never a 500
            raise InvalidRequest.of_fields(exc.errors(include_url=False)) from None
        columns = self.services.sync.validate(spec)
        if dry_run:
            draft = TableRegistration(
                **spec.model_dump(),
                registered_by=current.registered_by,
                registered_at=current.registered_at,
            )
            return Registered(table=draft, columns=columns, dry_run=True)
        updated = self.services.registry.update(spec)
        settings = self.services.settings
        if (
            current.source_type != updated.source_type
            and (settings.extracts_dir / current.source_type).is_dir()
        ):
            ExtractWriter(settings.extracts_dir, current.source_type).drop(table_id)
            self.services.orchestrator.rebuild_source(current.source_type)
        self.services.audit.record(
            admin, "registry.update", resource=table_id, params={"changed": sorted(changes)}
        )
        registered = Registered(table=updated, columns=columns, dry_run=False)
        reshaped = set(changes) - READ_WHEN_SERVED
        if any(getattr(updated, name, None) != getattr(current, name, None) for name in reshaped):
            # The data the table serves is the last sync's: a changed filter, mode or
            # source would reach it only at the next scheduled run (rows an admin just
            # filtered out still pulled): it is run now, after any run in progress.
            registered._first_sync = self.services.sync.enqueue(
                table_id, "registry.update", again=True
            )
            registered.resync = "queued"
        return registered

    def unregister(self, admin: Principal, table_id: str) -> None:
        """Forget a table: its registration, grants, state, profile and data."""
        self.services.sync.unregister(table_id)
        self.services.audit.record(admin, "registry.unregister", resource=table_id)

    def trigger(
        self, admin: Principal, table_id: str | None = None, *, wait: bool = True
    ) -> TriggerResult:
        """Sync one table (every table when ``table_id`` is None) now; with ``wait`` the
        results, else the ids queued."""
        if table_id is not None:
            ids = [self.services.registry.get(table_id).id]
        else:
            ids = [t.id for t in self.services.registry.all()]
        self.services.audit.record(
            admin, "sync.trigger", resource=table_id or "*", params={"wait": wait}
        )
        if not wait:
            queued = TriggerResult(queued=ids)
            queued._runs = [self.services.sync.enqueue(one, "manual") for one in ids]
            return queued
        return TriggerResult(results=self.services.sync.sync_many(ids, "manual"))

    # --- explaining a refusal ---------------------------------------------------------

    def field_of(self, error: AgnesError, spec: TableSpec) -> str | None:
        """The :class:`TableSpec` field a validation refusal is about (for showing it beside
        that field), or None when it is about the table as a whole."""
        named = error.details.get("field")
        if isinstance(named, str):
            return named
        column = error.details.get("column")
        if isinstance(column, str):
            if column in (spec.primary_key or []):
                return "primary_key"
            for name in ("incremental_column", "partition_by"):
                if getattr(spec, name) == column:
                    return name
        if isinstance(error, SourceNotConfigured):
            return "source_type"
        if isinstance(error, InvalidSchedule):
            return "sync_schedule"
        if isinstance(error, SourceTableNotFound):
            return "source_table"
        if isinstance(error, ConnectorCapabilityMissing):
            return self._missing_capability_field(spec)
        return _field_named_in(error.message)

    def _missing_capability_field(self, spec: TableSpec) -> str:
        mode = spec.query_mode.value
        if mode in (Capability.REMOTE, Capability.MATERIALIZED):
            try:
                capabilities = connector_class(
                    self._source_config(spec.source_type).connector
                ).capabilities
            except AgnesError:
                return "source_type"
            if Capability(mode) not in capabilities:
                return "query_mode"
        return "sync_strategy"

    def _source_config(self, source: str) -> Any:
        config = self.services.settings.sources.get(source)
        if config is None:
            self.services.sources.connector(source)  # raises the "did you mean" refusal
        return config


# Words in a refusal's message, in the order they are checked, and the field they name.
_MESSAGE_FIELDS = (
    ("source options", "source_options"),
    ("where_filters", "where_filters"),
    ("needs sql", "source_query"),
    ("take sql", "source_query"),
    ("incremental", "incremental_column"),
    ("partition", "partition_by"),
    ("remote table", "sync_strategy"),
    ("source_table", "source_table"),
)


def _field_named_in(message: str) -> str | None:
    lowered = message.lower()
    for words, field in _MESSAGE_FIELDS:
        if words in lowered:
            return field
    return None
