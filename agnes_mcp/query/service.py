"""The one query service every SQL string goes through (API, MCP tools, CLI, notebooks).

Order of work for a query: a place among the running queries (per user and server-wide,
refused with ``too_many_queries`` rather than queued) -> policy (sqlglot, in the engine's
dialect) -> DuckDB's own parse (the table names must agree) -> tables resolved against
grants and query modes -> for a remote query: estimate, per-query cap, daily budget, a
concurrency slot -> run (local: a sandbox holding only the caller's tables; remote: the
warehouse engine under the cap) -> result with provenance -> audit row (allowed or
refused, off the request path).
"""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any

from sqlglot import exp

from agnes_mcp.audit_trail import AuditTrail
from agnes_mcp.auth.principal import Principal
from agnes_mcp.auth.rbac import AccessControl
from agnes_mcp.query.budget import ScanBudget
from agnes_mcp.query.catalog import QueryCatalog
from agnes_mcp.query.concurrency import QuerySlots
from agnes_mcp.rails import policy
from agnes_mcp.rails.checked_parse import parse_checked
from agnes_mcp.rails.duckdb_check import repeatable
from agnes_mcp.rails.engine import (
    EngineResources,
    Estimate,
    RemoteEngine,
    UnknownEngine,
    dialect_of,
    engine_class,
)
from agnes_mcp.rails.engine_errors import placed_in
from agnes_mcp.rails.extra_tables import Extras, registrar
from agnes_mcp.rails.file_copies import SHARED, FileCopies
from agnes_mcp.rails.fixed_width import fixed_width
from agnes_mcp.rails.native_tables import NativeTables
from agnes_mcp.rails.outcome import Outcome, outcome_of
from agnes_mcp.rails.planner import (
    Plan,
    plan_local,
    plan_remote,
    rewrite_remote_names,
    snapshot_call,
)
from agnes_mcp.rails.policy import ParsedQuery
from agnes_mcp.rails.refusals import (
    BudgetExhausted,
    MixedEngines,
    NoRemoteTable,
    QueryFailed,
    QueryRefused,
    RemoteEstimateFailed,
    RemoteScanTooLarge,
    SqlParseError,
    SqlTooLarge,
    next_step,
)
from agnes_mcp.rails.sandbox import Limits
from agnes_mcp.rails.sandbox_pool import SandboxPool
from agnes_mcp.rails.tables import CatalogTable, VersionedCatalog
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.settings import AgnesSettings
from agnes_mcp.sources import SourceCatalog
from agnes_mcp.store.database import SystemStore
from agnes_mcp.store.server_config import ServerConfigRepository
from agnes_mcp.store.table_registry import TableRegistryRepository
from agnes_sync.human_size import exact_size
from agnes_sync.orchestrator import Orchestrator
from agnes_sync.profile import ColumnProfile, TableProfile

Mode = str  # "local" | "remote" | "auto"
REFUSAL_CHARS = 2000  # of a refusal's message and hint kept in its audit row


@dataclass
class EstimateOutcome:
    scan_bytes: int
    limit_bytes: int
    remaining_budget_bytes: int
    engine: str
    tables: list[str]
    result_rows: int | None
    detail: dict[str, Any]


class QueryService:
    def __init__(
        self,
        *,
        settings: AgnesSettings,
        store: SystemStore,
        registry: TableRegistryRepository,
        server_config: ServerConfigRepository,
        orchestrator: Orchestrator,
        access: AccessControl,
        sources: SourceCatalog,
        audit: AuditTrail,
    ) -> None:
        self.settings = settings
        self.access = access
        self.sources = sources
        self.audit_trail = audit
        self.catalog = QueryCatalog(store, registry, orchestrator)
        self.budget = ScanBudget(settings, server_config, store)
        self.slots = QuerySlots()
        copy_bytes = int(settings.query_file_copy_bytes)
        self.sandboxes = SandboxPool(
            memory_limit=settings.query_memory_limit,
            threads=settings.query_threads,
            spill_bytes=int(settings.query_spill_bytes),
            # The process's shared copies at the default budget; a server's own otherwise.
            copies=(
                None
                if copy_bytes == 0
                else SHARED
                if copy_bytes == SHARED.max_bytes
                else FileCopies(max_bytes=copy_bytes)
            ),
            natives=NativeTables(
                int(settings.query_native_table_bytes),
                min_bytes=int(settings.query_native_table_min_bytes),
                memory_limit=settings.query_memory_limit,
            )
            if int(settings.query_native_table_bytes) > 0
            else None,
        )
        self._engines: dict[tuple[str, str], tuple[object, RemoteEngine]] = {}
        self._engine_lock = threading.Lock()
        self._engine_resources = EngineResources(
            memory_limit=settings.query_memory_limit,
            threads=settings.query_threads,
            spill_bytes=int(settings.query_spill_bytes),
        )

    # --- parsing and planning ----------------------------------------------------------------

    def _parse(self, sql: str, dialect: str) -> ParsedQuery:
        return parse_checked(sql, dialect)

    def plan(
        self, principal: Principal, sql: str, mode: Mode, extras: Extras | None = None
    ) -> tuple[ParsedQuery, Plan, VersionedCatalog]:
        """Parse in the right dialect and resolve the tables, or raise a refusal."""
        self.access.require_data_scope(principal)
        snapshot = self.catalog.current()
        access = self.access.tables_for(principal)
        own = {name: e.as_catalog_table() for name, e in (extras or {}).items()}
        parsed = self._parse_any(sql, mode, snapshot)
        if mode == "local":
            return parsed, plan_local(parsed, snapshot, access, own), snapshot
        remote_refs = [ref for ref in parsed.refs if _is_remote(ref, snapshot)]
        if mode == "auto" and not remote_refs:
            local = plan_local(parsed, snapshot, access, own)
            if parsed.dialect != policy.DUCKDB:
                # Only a warehouse's dialect read it (BigQuery's triple-quoted strings and
                # # comments hide text DuckDB reads as SQL): it may run in that warehouse,
                # never in the server's DuckDB. Refused as DuckDB's rails read it.
                parsed = self._parse(sql, policy.DUCKDB)
                local = plan_local(parsed, snapshot, access, own)
            return parsed, local, snapshot
        if mode == "auto" and len(remote_refs) < len(parsed.refs):
            # Each side resolved and checked as a query of its own would be first: a name
            # that is no table, or a table not granted, is refused as that (not as a join
            # of engines), and the ready snapshot is only ever of a table the caller may read.
            local_refs = [ref for ref in parsed.refs if ref not in remote_refs]
            plan_local(replace(parsed, refs=local_refs), snapshot, access, own)
            remote = plan_remote(replace(parsed, refs=remote_refs), snapshot, access)
            raise MixedEngines(
                "The query joins server tables with a remote table; one query runs in one place.",
                hint="Snapshot the remote rows you need (snapshot_create), then join locally; "
                "admins can also use the hybrid query.",
                next=snapshot_call(remote.tables[0]),
            )
        plan = plan_remote(parsed, snapshot, access, own)
        if not plan.tables:
            raise NoRemoteTable(
                "The query reads no remote table, so there is nothing to run in a warehouse.",
                next=next_step("query", f'agnes query "{parsed.sql}"', sql=parsed.sql),
            )
        engine_dialect = self._dialect_of(plan)
        if engine_dialect != parsed.dialect:
            parsed = self._parse(sql, engine_dialect)
            plan = plan_remote(parsed, snapshot, access, own)
        return parsed, plan, snapshot

    def _parse_any(self, sql: str, mode: Mode, catalog: VersionedCatalog) -> ParsedQuery:
        """DuckDB first; a remote query that DuckDB cannot parse is tried in the dialect of
        each warehouse in the catalog (backticks, BigQuery functions, ...)."""
        try:
            return self._parse(sql, policy.DUCKDB)
        except SqlParseError:
            if mode == "local":
                raise
            for dialect in _remote_dialects(catalog):
                try:
                    return self._parse(sql, dialect)
                except SqlParseError:
                    continue
            raise

    def _dialect_of(self, plan: Plan) -> str:
        return dialect_of(plan.tables[0]) if plan.tables else policy.DUCKDB

    # --- engines ------------------------------------------------------------------------------

    def engine_for(self, table: CatalogTable, version: object = None) -> RemoteEngine:
        """The engine of ``table``'s warehouse, re-created when the catalog changes (a
        re-synced warehouse must not be read through a stale attach or layout cache)."""
        location = table.remote
        if location is None:
            raise RemoteEstimateFailed(f"'{table.id}' has no warehouse location.")
        key = (location.source, location.url)
        with self._engine_lock:
            current = self._engines.get(key)
            if current is not None and current[0] == version:
                return current[1]
            engine_type = engine_class(location.engine)
            source = self.sources.connector(location.source)
            engine = engine_type.open(location, source, self._engine_resources)
            self._engines[key] = (version, engine)
            if current is not None:
                current[1].close()
            return engine

    def remote_profile(self, table_id: str) -> TableProfile | None:
        """A remote table's partition column range, from its warehouse's metadata."""
        catalog = self.catalog.current()
        table = catalog.tables.get(table_id)
        if table is None or table.remote is None or not table.partition_by:
            return None
        found = self.engine_for(table, catalog.version).column_range(table, table.partition_by)
        if found is None:
            return None
        column = ColumnProfile(table.partition_by, "", None, None, found[0], found[1])
        return TableProfile(rows=table.rows or 0, columns=[column])

    # --- running --------------------------------------------------------------------------------

    def limits(self, limit: int | None) -> Limits:
        caps = self.budget.caps()
        return Limits.for_request(
            limit,
            default=self.settings.query_default_rows,
            cap=caps.max_result_rows,
            bytes=caps.max_result_bytes,
            timeout_seconds=self.settings.query_timeout_seconds,
        )

    def run(
        self,
        principal: Principal,
        sql: str,
        *,
        limit: int | None = None,
        mode: Mode = "local",
        action: str = "query",
        extras: Extras | None = None,
        limits: Limits | None = None,
    ) -> Outcome:
        """Run ``sql`` for ``principal`` through the rails; every outcome is audited.
        ``extras``: the caller's own tables (snapshots, kept results) for local queries;
        ``limits``: the caps for trusted callers with their own (snapshots), else the
        query caps for ``limit``."""
        started = time.perf_counter()
        try:
            with self._slot(principal, limits):
                try:
                    parsed, plan, snapshot = self.plan(principal, sql, mode, extras)
                except RecursionError:  # a tree too deep for some walker: refuse, never crash
                    raise SqlTooLarge("The SQL is nested too deeply to check.") from None
                limits = limits or self.limits(limit)
                if plan.mode == "local":
                    outcome = self._run_local(principal, parsed, plan, snapshot, limits, extras)
                else:
                    outcome = self._run_remote(principal, parsed, plan, snapshot, limits)
        except QueryRefused as refusal:
            self.audit(principal, action, sql, started, refusal=refusal)
            raise
        self.audit(principal, action, sql, started, outcome=outcome)
        return outcome

    def _slot(self, principal: Principal, limits: Limits | None) -> AbstractContextManager[None]:
        """A place among the caller's and the server's running queries, or
        ``too_many_queries`` at once: every query (REST, MCP, CLI through the server,
        metrics, snapshots) passes here, so the limits hold whatever the way in."""
        caps = self.budget.caps()
        timeout = limits.timeout_seconds if limits else self.settings.query_timeout_seconds
        return self.slots.hold(
            principal.user_id,
            per_user=caps.concurrent_queries_per_user,
            total=caps.concurrent_queries,
            timeout_seconds=timeout,
        )

    def _granted_local(
        self, principal: Principal, snapshot: VersionedCatalog
    ) -> list[CatalogTable]:
        granted = self.access.granted(principal, ResourceType.TABLE)
        return [
            t
            for t in snapshot.tables.values()
            if not t.is_remote and (granted is None or t.id in granted)
        ]

    def _run_local(
        self,
        principal: Principal,
        parsed: ParsedQuery,
        plan: Plan,
        snapshot: VersionedCatalog,
        limits: Limits,
        extras: Extras | None = None,
    ) -> Outcome:
        sandbox = self.sandboxes.get(
            self._granted_local(principal, snapshot), snapshot.version, reads=plan.tables
        )
        sandbox.refuse_unreadable(plan.tables)
        prepare = registrar(extras or {}, plan.tables)
        foreseen = fixed_width(parsed.tree, plan.tables)
        result = sandbox.run(parsed.sql, limits, prepare=prepare, fixed_width=foreseen)
        outcome = outcome_of(result, plan, parsed, "duckdb (server)", 0, None, limits)
        if result.truncated and result.reason == "rows" and repeatable(parsed.sql):
            outcome.total_rows = sandbox.count(
                parsed.sql, limits, prepare=prepare, spent=result.seconds
            )
        return outcome

    def convert_tables(self) -> None:
        """Queue every local table of the current catalog for conversion to DuckDB's own
        storage (:mod:`native_tables`). The catalog is read on the conversion thread, which
        ``close`` stops and joins: the caller (a sync, the server's start) pays nothing."""
        self.sandboxes.convert(
            lambda: [t for t in self.catalog.current().tables.values() if not t.is_remote]
        )

    def estimate(self, principal: Principal, sql: str) -> EstimateOutcome:
        """What ``sql`` would scan, without running it. An estimate works on the engine
        (a warehouse's metadata, the predicates' literals evaluated), so it takes a place
        among the caller's running queries as a query does."""
        started = time.perf_counter()
        try:
            with self._slot(principal, None):
                outcome = self._estimate(principal, sql)
        except QueryRefused as refusal:
            self.audit(principal, "query.estimate", sql, started, refusal=refusal)
            raise
        self.audit(principal, "query.estimate", sql, started, estimated=outcome.scan_bytes)
        return outcome

    def _estimate(self, principal: Principal, sql: str) -> EstimateOutcome:
        parsed, plan, snapshot = self.plan(principal, sql, "auto")
        caps = self.budget.caps()
        if plan.mode == "local":
            return EstimateOutcome(
                0,
                caps.per_query_bytes,
                self.budget.remaining(principal),
                "duckdb (server)",
                [t.id for t in plan.tables],
                None,
                {},
            )
        engine = self.engine_for(plan.tables[0], snapshot.version)
        tree = rewrite_remote_names(parsed, snapshot)
        estimate = engine.estimate(tree, plan.tables)
        return EstimateOutcome(
            estimate.scan_bytes,
            caps.per_query_bytes,
            self.budget.remaining(principal),
            engine.name,
            [t.id for t in plan.tables],
            estimate.result_rows,
            estimate.detail,
        )

    def _run_remote(
        self,
        principal: Principal,
        parsed: ParsedQuery,
        plan: Plan,
        snapshot: VersionedCatalog,
        limits: Limits,
    ) -> Outcome:
        engine = self.engine_for(plan.tables[0], snapshot.version)
        tree = rewrite_remote_names(parsed, snapshot)
        estimate = engine.estimate(tree, plan.tables)
        self.check_caps(principal, estimate, plan, tree)
        with (
            self.budget.slot(principal),
            self.budget.reserve(principal, estimate.scan_bytes) as allowed,
        ):
            try:
                result = engine.execute(
                    tree,
                    plan.tables,
                    limits=limits,
                    max_bytes=allowed,  # the per-query cap, or the budget left if less
                    labels={"agnes_user": principal.user_id, "agnes_query": parsed.fingerprint},
                )
            except QueryRefused as failed:  # stopped, failed or timed out: charge what it read
                read = int(failed.details.get("bytes_scanned") or 0)
                billed = failed.details.get("bytes_billed")  # the warehouse's bill, if any
                left = self.budget.charge(principal, read if billed is None else int(billed))
                if not isinstance(failed, RemoteScanTooLarge):
                    raise _as_written(
                        failed, parsed.sql, tree.sql(dialect=engine.dialect)
                    ) from None
                if allowed < self.budget.caps().per_query_bytes:  # the budget stopped it
                    spent = {} if billed is None else {"bytes_billed": billed}
                    raise BudgetExhausted(
                        f"The query was stopped after reading {read:,} bytes: that was the "
                        f"rest of today's budget ({left:,} bytes remain).",
                        details={"bytes_scanned": read, **spent, "remaining_bytes": left},
                    ) from None
                raise
            remaining = self.budget.charge(principal, result.bytes_charged)
        outcome = outcome_of(
            result, plan, parsed, engine.name, result.bytes_scanned, remaining, limits
        )
        outcome.bytes_billed = result.bytes_billed
        outcome.extra["estimated_bytes"] = estimate.scan_bytes
        return outcome

    def check_caps(
        self, principal: Principal, estimate: Estimate, plan: Plan, tree: exp.Expression
    ) -> None:
        caps = self.budget.caps()
        if estimate.scan_bytes > caps.per_query_bytes:
            table = plan.tables[0]
            raise RemoteScanTooLarge(
                f"The query would scan {exact_size(estimate.scan_bytes)}; the cap is "
                f"{exact_size(caps.per_query_bytes)} (per_query_bytes).",
                next=_narrowing_snapshot(table, estimate),
                details={
                    "scan_bytes": estimate.scan_bytes,
                    "limit_bytes": caps.per_query_bytes,
                    "tables": [t.id for t in plan.tables],
                },
            )
        self.budget.check_daily(principal, estimate.scan_bytes)

    # --- audit -----------------------------------------------------------------------------------

    def audit(
        self,
        principal: Principal,
        action: str,
        sql: str,
        started: float,
        *,
        outcome: Outcome | None = None,
        refusal: QueryRefused | None = None,
        estimated: int | None = None,
        parts_audited: bool = False,
    ) -> None:
        """One audit row of a query. ``parts_audited``: the bytes the outcome reports were
        read (and charged) by sub-queries audited on rows of their own (a hybrid query's
        remote parts); this row keeps them as ``bytes_scanned_in_parts`` (and
        ``bytes_billed_in_parts``), so what counts bytes from the log (the budget after a
        restart, usage, the overview) counts them once."""
        # The whole SQL (the rails refuse longer texts: only such a refusal's is cut, and
        # sql_chars tells), so a session exported from the log repeats exactly what ran.
        params: dict[str, Any] = {"sql": sql[: policy.MAX_SQL_CHARS], "sql_chars": len(sql)}
        if outcome is not None:
            params.update(
                fingerprint=outcome.parsed.fingerprint,
                tables=[t.id for t in outcome.plan.tables],
                engine=outcome.engine,
                bytes_estimated=outcome.extra.get("estimated_bytes"),
                bytes_scanned=outcome.bytes_scanned,
                rows=outcome.table.num_rows,
                truncated=outcome.truncated,
            )
            if outcome.bytes_billed is not None:  # charged, and counted again after a restart
                params["bytes_billed"] = outcome.bytes_billed
            if parts_audited:
                for key in ("bytes_scanned", "bytes_billed"):
                    if key in params:
                        params[f"{key}_in_parts"] = params.pop(key)
        if estimated is not None:
            params["bytes_estimated"] = estimated
        if refusal is not None:
            params["refusal"] = {
                "message": refusal.message[:REFUSAL_CHARS],
                "hint": refusal.hint[:REFUSAL_CHARS] if refusal.hint else None,
            }
            if refusal.details.get("bytes_scanned"):  # stopped by the engine: it still read
                params["bytes_scanned"] = int(refusal.details["bytes_scanned"])
            if refusal.details.get("bytes_billed") is not None:  # and the warehouse billed
                params["bytes_billed"] = int(refusal.details["bytes_billed"])
            try:
                params["fingerprint"] = policy.fingerprint(sql, policy.DUCKDB)
            except Exception:  # noqa: BLE001 - a query so malformed it does not even tokenize
                params["fingerprint"] = None
        self.audit_trail.record(
            principal,
            action,
            resource=",".join(params.get("tables") or []) or None,
            result="ok" if refusal is None else refusal.code,
            params=params,
            started=started,
        )

    def close(self) -> None:
        self.sandboxes.close()
        with self._engine_lock:
            for _, engine in self._engines.values():
                engine.close()
            self._engines.clear()


def _as_written(failed: QueryRefused, written: str, ran: str) -> QueryRefused:
    """An engine's refusal that points at a line and column of the SQL it ran (``ran``:
    the caller's ``written`` SQL with table names made warehouse paths, keywords and
    spacing normalised) pointed at the caller's own SQL instead, or at nothing when the
    token is one the rewriting made (a warehouse path)."""
    line, column = failed.details.get("line"), failed.details.get("column")
    if not (isinstance(failed, QueryFailed) and isinstance(line, int) and isinstance(column, int)):
        return failed
    if ran == written:
        return failed
    placed = placed_in(written, ran, line, column)
    message = failed.message.removesuffix(f" (line {line}, column {column})")
    if placed is not None:
        message += f" (line {placed[0]}, column {placed[1]})"
    new_line, new_column = placed if placed is not None else (None, None)
    details = {**failed.details, "line": new_line, "column": new_column}
    return QueryFailed(message, hint=failed.hint, details=details)


def _is_remote(ref: policy.TableRef, snapshot: VersionedCatalog) -> bool:
    if ref.qualified:
        return (
            snapshot.by_remote_path(tuple(p for p in (ref.catalog, ref.db, ref.name) if p))
            is not None
        )
    table = snapshot.tables.get(ref.name)
    return table is not None and table.is_remote


def _remote_dialects(catalog: VersionedCatalog) -> list[str]:
    """The dialects of the warehouses the catalog's remote tables live in, DuckDB aside."""
    names = sorted({t.remote.engine for t in catalog.tables.values() if t.remote is not None})
    dialects = set()
    for name in names:
        try:
            dialects.add(engine_class(name).dialect)
        except UnknownEngine:
            continue  # refused by name when a query reaches that table
    return sorted(dialects - {policy.DUCKDB})


def _narrowing_snapshot(table: CatalogTable, estimate: Estimate) -> dict[str, Any]:
    """A ready snapshot_create that reads less: the columns the query used, a recent slice."""
    step = snapshot_call(table)
    detail = estimate.detail.get("tables", {})
    used = detail.get(table.id, {}).get("columns") if isinstance(detail, dict) else None
    arguments = step.get("arguments")
    if isinstance(used, list) and used and isinstance(arguments, dict):
        arguments["select"] = used
        step["cli"] = str(step.get("cli", "")).replace("<columns>", ",".join(used))
    return step
