"""Syncing registered tables: validation against the source, runs, state, profiles, scheduling.

The engine (connectors, strategies, orchestrator, scheduler) knows nothing of the
system store; this service connects them: it turns a registration into a
:class:`~agnes_sync.connector.TableRequest`, runs the connector with retries, swaps in
the new analytics DB, profiles the result and records state and history. A failed
sync leaves the previously published data, views and hash in place.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import blake3
from pydantic import BaseModel

from agnes_mcp.catalog_models import ColumnInfo
from agnes_mcp.errors import TableNotRegistered
from agnes_mcp.settings import AgnesSettings
from agnes_mcp.sources import SourceCatalog
from agnes_mcp.store.ids import utcnow
from agnes_mcp.store.profiles import ProfileRepository
from agnes_mcp.store.sync_state import SyncStateRepository
from agnes_mcp.store.table_registry import TableRegistration, TableRegistryRepository
from agnes_sync import strategies
from agnes_sync.connector import Column, Connector, TableRequest
from agnes_sync.contract import ExtractWriter, PublishedTable
from agnes_sync.errors import AgnesError, InvalidTableSpec
from agnes_sync.locks import lock_for
from agnes_sync.orchestrator import Orchestrator
from agnes_sync.plural import counted
from agnes_sync.predicate_binds import bind_problem
from agnes_sync.profile import TableProfile, profile_parquet
from agnes_sync.retry import with_retries
from agnes_sync.schedule import Schedule, parse_schedule
from agnes_sync.scheduler import Job, Scheduler
from agnes_sync.storage_errors import storage_failure
from agnes_sync.suggest import did_you_mean
from agnes_sync.table_spec import TableSpec

logger = logging.getLogger("agnes.sync")

_DATE_TYPES = ("DATE", "TIMESTAMP")


class SyncResult(BaseModel):
    table_id: str
    status: str  # ok | error
    rows: int | None = None
    size_bytes: int | None = None
    files: int = 0
    unchanged_parts: int = 0
    attempts: int = 0
    seconds: float = 0.0
    error: dict[str, Any] | None = None
    notes: list[str] = []  # e.g. a schema change, also kept in the sync history


def table_hash(published: PublishedTable) -> str | None:
    hashes = sorted(f.content_hash for f in published.files)
    if not hashes:
        return None
    if len(hashes) == 1:
        return hashes[0]
    return blake3.blake3("\n".join(hashes).encode()).hexdigest()


@dataclass
class SyncService:
    settings: AgnesSettings
    registry: TableRegistryRepository
    states: SyncStateRepository
    profiles: ProfileRepository
    sources: SourceCatalog
    orchestrator: Orchestrator
    clock: Callable[[], Any] = utcnow
    # Profiles a remote table from its warehouse's metadata (the partition column's range);
    # wired by Services to the query service, which holds the engines.
    remote_profiler: Callable[[str], TableProfile | None] | None = None
    # Told after a sync published new files (the query service converts them).
    on_published: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self.scheduler = Scheduler(
            self._jobs, self._scheduled_run, workers=self.settings.sync_workers
        )
        self._started = False
        self._stopped = False
        self._recovered = False
        # The runs start() began for syncs a previous process queued and never ran.
        self.requeued: list[Future[object]] = []

    # --- validation -------------------------------------------------------------------

    def validate(self, spec: TableSpec) -> list[ColumnInfo]:
        """Check ``spec`` against its source before it is stored; returns its columns."""
        connector = self.sources.connector(spec.source_type)
        request = TableRequest.of(spec)
        connector.check_supported(request)
        connector.table_options(request)
        if spec.sync_schedule:
            parse_schedule(spec.sync_schedule)
        strategies.checked_filter(spec.where_filters)
        mode, strategy = spec.query_mode.value, spec.sync_strategy.value
        if mode == "materialized" and not (spec.source_query or "").strip():
            raise InvalidTableSpec(f"Materialized table '{spec.id}' needs SQL (--query).")
        if mode != "materialized" and spec.source_query:
            raise InvalidTableSpec(f"Only materialized tables take SQL; '{spec.id}' is {mode}.")
        if mode == "remote" and strategy != "full_refresh":
            raise InvalidTableSpec("A remote table is not copied, so it has no sync strategy.")
        if strategy == "incremental" and not spec.incremental_column:
            raise InvalidTableSpec("An incremental table needs --incremental-column.")
        if strategy == "partitioned" and not (spec.partition_by and spec.partition_granularity):
            raise InvalidTableSpec(
                "A partitioned table needs --partition-by and --partition-granularity."
            )
        described = connector.describe_table(request)
        columns = {c.name: c for c in described}
        if spec.where_filters and mode != "remote":
            _check_filter_binds(connector.local_filter(spec.where_filters, described), described)
        for key in spec.primary_key or []:
            _need(columns, key, "primary key column", spec)
        if spec.incremental_column:
            column = _need(columns, spec.incremental_column, "incremental column", spec)
            kind = column.type.upper()
            counted = spec.incremental_window_days or spec.max_history_days
            if counted and not kind.startswith((*strategies.DAY_COUNTED_TYPES, "VARCHAR")):
                raise InvalidTableSpec(
                    strategies.days_counted_problem(request, kind),
                    details={"field": "incremental_column", "column": column.name},
                )
        if spec.partition_by:
            column = _need(columns, spec.partition_by, "partition column", spec)
            if strategy == "partitioned" and not column.type.upper().startswith(_DATE_TYPES):
                raise InvalidTableSpec(
                    f"Partition column '{spec.partition_by}' is {column.type}; "
                    "partitioning by day, month or year needs a DATE or TIMESTAMP column."
                )
        return [ColumnInfo(name=c.name, type=c.type, nullable=c.nullable) for c in columns.values()]

    # --- running ------------------------------------------------------------------------

    def sync(self, table_id: str, trigger: str = "manual") -> SyncResult:
        """Sync one table now (waits if it is already syncing in this process)."""
        with lock_for(self.settings.extracts_dir / f".sync-{table_id}"):
            return self._sync(table_id, trigger)

    def _sync(self, table_id: str, trigger: str) -> SyncResult:
        try:
            table = self.registry.get(table_id)
        except TableNotRegistered:
            self.states.not_run(
                table_id, self.clock(), "not run: the table was unregistered before it started"
            )
            raise
        started = time.perf_counter()
        run_id = self.states.started(table_id, trigger, self.clock())
        attempts = 0
        try:
            connector = self.sources.connector(table.source_type)
            writer = ExtractWriter(self.settings.extracts_dir, table.source_type)
            writer.sweep(table_id)
            request = TableRequest.of(table)
            published, attempts = with_retries(
                lambda: connector.extract(request, writer),
                attempts=self.settings.sync_attempts,
                backoff_seconds=self.settings.sync_backoff_seconds,
            )
            self.orchestrator.rebuild_source(table.source_type)
            if self.on_published is not None:
                self.on_published()
        except Exception as exc:  # a full disk first: it may surface as any other error
            known = storage_failure(exc, self.settings.data_dir) or (
                exc if isinstance(exc, AgnesError) else None
            )
            if known is not None:
                tried = exc.details.get("attempts") if isinstance(exc, AgnesError) else None
                attempts = int(tried or attempts or 1)
                return self._failed(table_id, run_id, started, attempts, known.to_dict())
            incident = secrets.token_hex(6)
            logger.exception("sync of %s failed unexpectedly (incident %s)", table_id, incident)
            error = {
                "code": "internal_error",
                "message": f"The sync failed unexpectedly (incident {incident}).",
                "hint": "The server log holds the details under this incident id.",
            }
            return self._failed(table_id, run_id, started, max(attempts, 1), error)
        self._profile(table, published, connector)
        seconds = time.perf_counter() - started
        logger.info(
            "sync of %s (%s) ok: %s, %s, %.2fs, %s",
            table_id,
            trigger,
            counted(published.rows, "row"),
            counted(len(published.files), "file"),
            seconds,
            counted(attempts, "attempt"),
        )
        self.states.finished(
            run_id,
            table_id,
            at=self.clock(),
            ok=True,
            attempts=attempts,
            duration_ms=seconds * 1000,
            rows=published.rows,
            size_bytes=published.size_bytes,
            content_hash=table_hash(published),
            notes="; ".join(published.notes) or None,
        )
        return SyncResult(
            table_id=table_id,
            status="ok",
            rows=published.rows,
            size_bytes=published.size_bytes,
            files=len(published.files),
            unchanged_parts=published.unchanged_parts,
            attempts=attempts,
            seconds=round(seconds, 3),
            notes=published.notes,
        )

    def _failed(
        self, table_id: str, run_id: int, started: float, attempts: int, error: dict[str, Any]
    ) -> SyncResult:
        seconds = time.perf_counter() - started
        # one line per failed run, scheduled ones included (no one waits on those); sync
        # errors never carry a secret (connectors name the variable, not its value)
        logger.warning(
            "sync of %s failed after %s (%s): %s",
            table_id,
            counted(attempts, "attempt"),
            error["code"],
            error["message"],
        )
        self.states.finished(
            run_id,
            table_id,
            at=self.clock(),
            ok=False,
            attempts=attempts,
            duration_ms=seconds * 1000,
            error=error["message"],
        )
        return SyncResult(
            table_id=table_id,
            status="error",
            attempts=attempts,
            seconds=round(seconds, 3),
            error=error,
        )

    def _profile(
        self, table: TableRegistration, published: PublishedTable, connector: Connector
    ) -> None:
        if table.query_mode.value == "remote":
            self._profile_remote(table)
            return
        if not published.files:
            return
        root = self.settings.extracts_dir / table.source_type
        try:
            with contextlib.closing(connector.duckdb_cursor(root)) as cursor:
                profile = profile_parquet([str(root / f.path) for f in published.files], cursor)
        except Exception:  # a profile is a nicety; it never fails a sync
            logger.warning("profiling %s failed", table.id, exc_info=True)
            return
        self.profiles.put(table.id, profile, self.clock())

    def _profile_remote(self, table: TableRegistration) -> None:
        if self.remote_profiler is None or not table.partition_by:
            return
        try:
            profile = self.remote_profiler(table.id)
        except Exception:  # a profile is a nicety; it never fails a sync
            logger.warning("profiling remote table %s failed", table.id, exc_info=True)
            return
        if profile is not None:
            self.profiles.put(table.id, profile, self.clock())

    def sync_many(self, table_ids: list[str], trigger: str = "manual") -> list[SyncResult]:
        """Sync several tables on the worker pool (at most one run per table) and wait."""
        futures = [self.scheduler.trigger(t, trigger) for t in table_ids]
        return [f.result() for f in futures]  # type: ignore[misc]

    def unregister(self, table_id: str) -> None:
        """Forget a table: registry row, grants, state, profile, its data, its view."""
        table = self.registry.get(table_id)
        with lock_for(self.settings.extracts_dir / f".sync-{table_id}"):
            self.registry.delete(table_id)
            self.profiles.delete(table_id)
            if (self.settings.extracts_dir / table.source_type).is_dir():
                ExtractWriter(self.settings.extracts_dir, table.source_type).drop(table_id)
                self.orchestrator.rebuild_source(table.source_type)

    # --- scheduling -----------------------------------------------------------------------

    def _jobs(self) -> list[Job]:
        states = self.states.all()
        jobs = []
        for table in self.registry.all():
            state = states.get(table.id)
            jobs.append(
                Job(
                    key=table.id,
                    schedule=_schedule(table.sync_schedule),
                    last_started=state.last_started_at if state else None,
                    last_succeeded=state.last_success_at if state else None,
                )
            )
        return jobs

    def next_run(self, table: TableRegistration) -> Any:
        schedule = _schedule(table.sync_schedule)
        state = self.states.get(table.id)
        if schedule is None:
            return None
        if state is None or state.last_started_at is None:
            return self.clock()
        return schedule.next_after(state.last_started_at)

    def _scheduled_run(self, table_id: str, trigger: str) -> SyncResult:
        return self.sync(table_id, trigger)

    def recover(self) -> None:
        """Before serving: close runs a previous process left open and rebuild the analytics
        DB (once). A write the data dir's disk refuses is a :class:`StorageUnwritable`."""
        if self._recovered:
            return
        try:
            self.states.interrupted(self.clock())
            self.orchestrator.rebuild()
        except Exception as exc:
            storage = storage_failure(exc, self.settings.data_dir)
            if storage is None:
                raise
            raise storage from exc
        self._recovered = True

    def enqueue(
        self, table_id: str, trigger: str = "manual", *, again: bool = False
    ) -> Future[object]:
        """Sync ``table_id`` in the background. Unless it is syncing already (the call
        then joins that run), the request is recorded as queued first: a server that stops
        before running it runs it at its next start (:meth:`start`). With ``again`` (what
        the table syncs changed) a run in progress is followed by one more, queued so too
        (:meth:`Scheduler.trigger`)."""
        if again or table_id not in self.scheduler.running():
            self.states.queued(table_id, trigger, self.clock())
        return self.scheduler.trigger(table_id, trigger, again=again)

    def start(self) -> None:
        """At server start: recover (if not done yet), start the clock, and run the syncs
        a previous process queued and never ran."""
        if self._started:
            return
        self.recover()
        self._started = True
        if self.settings.scheduler_enabled:
            self.scheduler.start()
        registered = {t.id for t in self.registry.all()}
        for table_id, trigger in self.states.still_queued():
            if table_id not in registered:
                self.states.not_run(
                    table_id,
                    self.clock(),
                    "not run: the table was unregistered before the queued sync started",
                )
                continue
            logger.info("running the sync of %s queued before the server stopped", table_id)
            self.requeued.append(self.scheduler.trigger(table_id, trigger))

    def stop(self) -> None:
        self.scheduler.stop(wait=True)
        if self._stopped:  # said once
            return
        self._stopped = True
        left = [table for table, _ in self.states.still_queued()]
        if left:
            logger.warning(
                "%s queued and not started: run at the next start (%s)",
                counted(len(left), "sync"),
                ", ".join(left),
            )


def _schedule(text: str | None) -> Schedule | None:
    if not text:
        return None
    try:
        return parse_schedule(text)
    except AgnesError:
        return None


def _need(columns: dict[str, Column], name: str, what: str, spec: TableSpec) -> Column:
    if name in columns:
        return columns[name]
    suggestion = did_you_mean(name, columns)
    raise InvalidTableSpec(
        f"The {what} '{name}' is not a column of {spec.source_table or spec.id}.",
        hint=f"{suggestion}Columns: {', '.join(columns)}.",
        details={"column": name, "columns": list(columns)},
    )


def _check_filter_binds(predicate: str | None, columns: Sequence[Column]) -> None:
    """Refuse a row filter DuckDB cannot apply to the table's columns (a text column
    between numbers, a function of the wrong type) now, not at every sync after."""
    problem = bind_problem(predicate or "", columns)
    if problem is not None:
        raise InvalidTableSpec(
            f"where_filters cannot be applied to the table's columns: {problem}",
            hint="Compare each column with values of its type (the table's columns and "
            "types: 'agnes admin source-tables'), or cast it.",
        )
