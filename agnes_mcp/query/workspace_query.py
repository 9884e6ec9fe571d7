"""The SQL rails in an analyst's workspace: the same policy, DuckDB cross-check and locked
sandbox as the server, over the parquet pulled into ``.agnes/`` and local snapshots.

Only granted tables are ever pulled, so what is on disk is what the user may read. A
name that is not here is looked up (through ``classify``, the server's catalog) to say
why: a remote table needs a snapshot, a table not pulled yet needs ``agnes pull``.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from agnes_mcp.catalog_models import CatalogEntry
from agnes_mcp.errors import ConfigError
from agnes_mcp.query.concurrency import QuerySlots
from agnes_mcp.rails.arrow_sources import TableUnavailable
from agnes_mcp.rails.checked_parse import parse_checked
from agnes_mcp.rails.duckdb_check import repeatable
from agnes_mcp.rails.engine import engine_names
from agnes_mcp.rails.file_copies import IN_PLACE
from agnes_mcp.rails.fixed_width import fixed_width
from agnes_mcp.rails.outcome import Outcome, outcome_of
from agnes_mcp.rails.planner import plan_local, snapshot_call
from agnes_mcp.rails.policy import DUCKDB, ParsedQuery
from agnes_mcp.rails.refusals import (
    QueryRefused,
    RemoteTableNeedsSnapshot,
    TableNotFound,
    name_ambiguous,
    next_step,
    snapshot_expired,
)
from agnes_mcp.rails.sandbox import Limits, Sandbox
from agnes_mcp.rails.sandbox_pool import threads_for
from agnes_mcp.rails.tables import CatalogTable, RemoteLocation, VersionedCatalog
from agnes_sync.sql_text import quote_ident
from agnes_sync.suggest import did_you_mean, suggestions
from agnes_sync.workspace.inventory import DiskState, Inventory, disk_state, read_inventory
from agnes_sync.workspace.layout import WorkspacePaths

Classify = Callable[[str], CatalogEntry | None]


class TableNotPulled(QueryRefused):
    code = "table_not_pulled"
    status = 404
    default_hint = "Run 'agnes pull' to fetch the tables you are granted into this workspace."


def _refuse_incomplete(reads: list[CatalogTable], inventory: Inventory) -> None:
    """Refuse a query reading a partitioned table some of whose parts the last pull
    listed but did not fetch: its answer would silently leave those rows out."""
    for read in reads:
        held = inventory.tables.get(read.id)
        if held is not None and held.missing_parts:
            verb = "was" if held.missing_parts == 1 else "were"
            raise TableUnavailable(
                f"Table '{held.id}' is not whole here: {held.missing_parts:,} of its "
                f"{held.listed_parts:,} parts {verb} not pulled (a pull failed or was "
                "stopped before fetching them), so an answer would leave their rows out.",
                details={"table": held.id, "missing_parts": held.missing_parts},
            )


def _refuse_own_names(parsed: ParsedQuery, inventory: Inventory) -> None:
    for ref in parsed.refs:
        if not ref.qualified:
            refuse_own_name(ref.name, inventory)


def refuse_own_name(name: str, inventory: Inventory) -> None:
    """What the server refuses of the caller's own tables, refused here alike (for a
    query, ``schema`` and ``describe``): a snapshot past its lifetime
    (:func:`~agnes_mcp.rails.refusals.snapshot_expired`; its files stay until a listing,
    a create or a pull prunes them, but it is not read), and a name that is both a table
    pulled (or listed remote) here and one of this workspace's snapshots or results
    (:func:`~agnes_mcp.rails.refusals.name_ambiguous`)."""
    snapshot = inventory.snapshots.get(name)
    if snapshot is not None and snapshot.expired(dt.datetime.now(dt.UTC)):
        raise snapshot_expired(snapshot)
    if not (name in inventory.tables or name in inventory.remote):
        return
    if snapshot is not None:
        raise name_ambiguous(name, "snapshot", snapshot.table_id)
    if name in inventory.results:
        raise name_ambiguous(name, "result", "an earlier query")


class _OnDisk:
    """Access control for a workspace: everything on disk was granted when it was pulled."""

    def granted_tables(self) -> frozenset[str] | None:
        return None

    def can_read(self, table_id: str) -> bool:
        return True


@dataclass
class WorkspaceLimits:
    default_rows: int = 1000
    max_rows: int = 100_000
    max_bytes: int = 256 * 1024**2
    timeout_seconds: float = 120.0
    memory_limit: str = "2GB"
    threads: int = 2
    # Queries this workspace runs at once (an agent's parallel tool calls share one
    # sandbox and its memory); more are refused with too_many_queries, never queued.
    concurrent_queries: int = 4

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkspaceLimits:
        """The limits, with the query timeout from ``AGNES_QUERY_TIMEOUT_SECONDS`` when it
        is set (the variable the server's own timeout is set with; docs/workspace.md)."""
        raw = (os.environ if environ is None else environ).get(TIMEOUT_VARIABLE, "").strip()
        if not raw:
            return cls()
        try:
            seconds = float(raw)
        except ValueError:
            seconds = 0.0
        if not 0 < seconds < float("inf"):
            raise ConfigError(
                f"{TIMEOUT_VARIABLE} is '{raw}'; it must be a number of seconds above 0.",
                hint=f"Unset {TIMEOUT_VARIABLE} for the default ({cls.timeout_seconds:g} s).",
            )
        return cls(timeout_seconds=seconds)


TIMEOUT_VARIABLE = "AGNES_QUERY_TIMEOUT_SECONDS"


class WorkspaceQuery:
    def __init__(self, paths: WorkspacePaths, limits: WorkspaceLimits | None = None) -> None:
        self.paths = paths
        self.limits = limits or WorkspaceLimits.from_env()
        self._lock = threading.Lock()
        self._sandbox: tuple[DiskState, Sandbox, VersionedCatalog] | None = None
        # The single-threaded twin of that sandbox, for queries that read only small
        # tables (``threads_for``, as the server does): made when first needed, closed
        # with it.
        self._twin: Sandbox | None = None
        self._known: tuple[DiskState, Inventory] | None = None
        self.slots = QuerySlots("concurrent_queries of this workspace", "concurrent_queries")

    def inventory(self) -> Inventory:
        """What the workspace holds now (shared: read it, never change it)."""
        return self._inventory()[1]

    def _inventory(self) -> tuple[DiskState, Inventory]:
        """The inventory and the disk state it was read at: read again only when the disk
        changed (``disk_state``, asked first, before the read: a change racing the read
        leaves a state that no longer matches, so the next call reads again)."""
        state = disk_state(self.paths)
        known = self._known
        if known is not None and known[0] == state:
            return known
        known = (state, read_inventory(self.paths))
        self._known = known
        return known

    def _catalog(self, inventory: Inventory) -> VersionedCatalog:
        snapshot = VersionedCatalog(version=(0, 0))
        for name, path in inventory.results.items():
            snapshot.tables[name] = _table(name, "result", "an earlier query", (str(path),), None)
        for name, meta in inventory.snapshots.items():
            path = inventory.snapshot_root / f"{name}.parquet"
            snapshot.tables[name] = _table(
                name, "snapshot", meta.table_id, (str(path),), meta.created_at
            )
        for table in inventory.tables.values():
            snapshot.tables[table.id] = _table(
                table.id,
                table.query_mode,
                "workspace",
                tuple(str(f) for f in table.files),
                table.updated,
                table.description,
                rows=table.rows,  # the server's count when it was pulled (the manifest's)
                incomplete=table.incomplete,
                stale=table.stale,
            )
        for name, entry in inventory.remote.items():
            if entry.get("remote_name") and name not in snapshot.tables:
                snapshot.add(_remote_stub(name, entry, None))  # refused by name or by path
        return snapshot

    def _current(self) -> tuple[Sandbox, VersionedCatalog, Inventory]:
        signature, inventory = self._inventory()
        with self._lock:
            cached = self._sandbox
            if cached is not None and cached[0] == signature and not cached[1].retired:
                return cached[1], cached[2], inventory
            snapshot = self._catalog(inventory)
            sandbox = self._open(snapshot, self.limits.threads)
            if cached is not None:
                cached[1].close()
            if self._twin is not None:
                self._twin.close()
                self._twin = None
            self._sandbox = (signature, sandbox, snapshot)
            return sandbox, snapshot, inventory

    def _open(self, snapshot: VersionedCatalog, threads: int) -> Sandbox:
        return Sandbox(
            [t for t in snapshot.tables.values() if not t.is_remote],
            memory_limit=self.limits.memory_limit,
            threads=threads,
            copies=IN_PLACE,  # its own files, on its own machine: no secret, no copy
        )

    def _for_reads(
        self, sandbox: Sandbox, snapshot: VersionedCatalog, reads: list[CatalogTable]
    ) -> Sandbox:
        """``sandbox``, or its single-threaded twin when every table ``reads`` is one file
        of at most one row group by the manifest's count (a file a hand replaced with a
        larger one is still read right, on one thread). A table in several files keeps
        every thread: DuckDB reads files side by side (the demo's 10,000 orders in 34
        files: GROUP BY 5.6 ms on two threads, 6.1 ms on one)."""
        one_file = all(len(t.files) <= 1 for t in reads)
        if not one_file or threads_for(reads, self.limits.threads) == self.limits.threads:
            return sandbox
        with self._lock:
            current = self._sandbox
            if current is None or current[1] is not sandbox:
                return sandbox  # replaced meanwhile: this query keeps the one it began with
            if self._twin is None or self._twin.retired:
                self._twin = self._open(snapshot, 1)
            return self._twin

    def run(self, sql: str, limit: int | None, classify: Classify | None = None) -> Outcome:
        with self.slots.hold(
            "workspace",
            per_user=self.limits.concurrent_queries,
            total=self.limits.concurrent_queries,
            timeout_seconds=self.limits.timeout_seconds,
        ):
            try:
                return self._run(sql, limit, classify)
            except TableUnavailable as exc:  # here no sync will mend it: a pull does
                raise TableUnavailable(
                    exc.message,
                    hint="Run 'agnes pull': it checks every file against the server's hash "
                    "and fetches a damaged or missing one again.",
                    next={"tool": None, "arguments": {}, "cli": "agnes pull"},
                    details=exc.details,
                ) from None

    def _run(self, sql: str, limit: int | None, classify: Classify | None) -> Outcome:
        parsed = parse_checked(sql, DUCKDB)
        sandbox, snapshot, inventory = self._current()
        _refuse_own_names(parsed, inventory)
        try:
            plan = plan_local(parsed, snapshot, _OnDisk())
        except TableNotFound:
            missing = next(r.name for r in parsed.refs if r.name not in snapshot.tables)
            raise self._why_missing(missing, parsed.sql, inventory, classify) from None
        _refuse_incomplete(plan.tables, inventory)
        sandbox = self._for_reads(sandbox, snapshot, plan.tables)
        sandbox.refuse_unreadable(plan.tables)
        limits = Limits.for_request(
            limit,
            default=self.limits.default_rows,
            cap=self.limits.max_rows,
            bytes=self.limits.max_bytes,
            timeout_seconds=self.limits.timeout_seconds,
        )
        result = sandbox.run(parsed.sql, limits, fixed_width=fixed_width(parsed.tree, plan.tables))
        outcome = outcome_of(result, plan, parsed, "duckdb (workspace)", 0, None, limits)
        if result.truncated and result.reason == "rows" and repeatable(parsed.sql):
            outcome.total_rows = sandbox.count(parsed.sql, limits, spent=result.seconds)
        return outcome

    def columns(self, name: str) -> list[tuple[str, str, bool]]:
        """(name, type, nullable) of a table held here, read by trusted code from the
        sandbox's own view (``DESCRIBE`` is not a query the rails accept)."""
        sandbox, catalog, _ = self._current()
        if name not in catalog.tables or catalog.tables[name].is_remote:
            raise TableNotFound(f"There is no table '{name}' in this workspace.")
        sandbox.refuse_unreadable([catalog.tables[name]])
        cursor = sandbox.connection.cursor()
        try:
            rows = cursor.execute(f"DESCRIBE SELECT * FROM {quote_ident(name)}").fetchall()
        finally:
            cursor.close()
        return [(str(r[0]), str(r[1]), r[2] != "NO") for r in rows]

    def _why_missing(
        self, name: str, sql: str, inventory: Inventory, classify: Classify | None
    ) -> QueryRefused:
        remote = inventory.remote.get(name)
        entry = classify(name) if classify is not None and remote is None else None
        if remote is not None or (entry is not None and entry.location == "remote"):
            table = _remote_stub(name, remote, entry)
            return RemoteTableNeedsSnapshot(
                f"'{name}' is a remote table: it is not in this workspace.",
                next={
                    "options": [
                        next_step("query_remote", f'agnes query --remote "{sql}"', sql=sql),
                        snapshot_call(table),
                    ]
                },
                details={"table": name},
            )
        if entry is not None:
            return TableNotPulled(
                f"'{name}' is not pulled into this workspace yet.",
                next={"tool": None, "arguments": {}, "cli": "agnes pull"},
                details={"table": name},
            )
        here = [*inventory.tables, *inventory.snapshots, *inventory.results, *inventory.remote]
        if classify is None:  # no catalog of the server's at hand: say only what is here
            said = f"There is no table '{name}' in this workspace."
            then = "'agnes pull' fetches the tables you are granted."
        else:  # the server lists for each user only what they may read
            said = (
                f"There is no table '{name}' you may read: it is neither in this workspace "
                "nor among the server's tables for you (it does not exist, or you are not "
                "granted it)."
            )
            then = "An admin grants access to other tables."
        details: dict[str, object] = {"suggestions": suggestions(name, here, n=3)}
        if classify is not None:
            details["table"] = name  # the server may say more: its own refusal for it
        return TableNotFound(
            said,
            hint=did_you_mean(name, here, n=3)
            + f"List the tables you may use with the catalog tool. {then}",
            next=next_step("catalog", "agnes catalog", search=name),
            details=details,
        )

    def close(self) -> None:
        with self._lock:
            if self._sandbox is not None:
                self._sandbox[1].close()
                self._sandbox = None
            if self._twin is not None:
                self._twin.close()
                self._twin = None


def _table(
    name: str,
    mode: str,
    source: str,
    files: tuple[str, ...],
    updated: dt.datetime | None,
    description: str = "",
    rows: int | None = None,
    incomplete: str | None = None,
    stale: str | None = None,
) -> CatalogTable:
    return CatalogTable(
        id=name,
        description=description,
        query_mode=mode,
        source=source,
        rows=rows,
        size_bytes=None,
        extracted_at=updated,
        files=files,
        incomplete=incomplete,
        stale=stale,
    )


def _remote_stub(
    name: str, manifest: dict[str, object] | None, entry: CatalogEntry | None
) -> CatalogTable:
    """What a workspace knows of a remote table (from its manifest, or the server's
    catalog): enough to refuse it by name or warehouse path and suggest a snapshot."""
    said = manifest or {}
    partition = entry.partition_by if entry else said.get("partition_by")
    engine = str(said.get("engine") or (entry.engine if entry else None) or "")
    source = str(said.get("source_type") or (entry.source if entry else ""))
    return CatalogTable(
        id=name,
        description=str(said.get("description") or ""),
        query_mode="remote",
        source=source,
        rows=None,
        size_bytes=None,
        extracted_at=None,
        remote=RemoteLocation(
            source,
            str(said.get("alias") or ""),
            engine if engine in engine_names() else "duckdb",
            "",
            None,
            str(said.get("remote_name") or name),
        ),
        partition_by=str(partition) if partition else None,
        partition_range=_range(said.get("partition_range")),
    )


def _range(value: object) -> tuple[str, str] | None:
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return value[0], value[1]
    return None
