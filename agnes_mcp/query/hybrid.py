"""The hybrid query (admins only): remote sub-queries joined with the server's tables.

Each remote sub-query runs under the caps like any remote query; its Arrow result is
registered, under its alias, on the one sandbox cursor that then runs the main query
against those results and the server's local views.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace

import duckdb
import pyarrow as pa

from agnes_mcp.auth.principal import Principal
from agnes_mcp.query.service import QueryService
from agnes_mcp.rails import policy
from agnes_mcp.rails.duckdb_check import cross_check
from agnes_mcp.rails.outcome import Outcome
from agnes_mcp.rails.planner import plan_local
from agnes_mcp.rails.refusals import QueryRefused, RemotePartTooLarge, SnapshotInvalid
from agnes_mcp.rails.sandbox import run_select
from agnes_mcp.rails.tables import CatalogTable
from agnes_sync.human_size import human_size

_ALIAS = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
MAX_REMOTE_PARTS = 8
# (the refusal's own hint is about snapshots' columns and predicates)
_PARTS_HINT = (
    f"Give register_remote 1 to {MAX_REMOTE_PARTS} parts, each named by an alias of "
    "lowercase letters, digits and '_' (at most 63, not starting with a digit) that no "
    "registered table has, and use those aliases as tables in sql."
)


def hybrid(
    queries: QueryService,
    principal: Principal,
    sql: str,
    register_remote: dict[str, str],
    *,
    limit: int | None = None,
) -> Outcome:
    queries.access.require_admin(principal)
    started = time.perf_counter()
    if not register_remote or len(register_remote) > MAX_REMOTE_PARTS:
        raise SnapshotInvalid(
            f"register_remote needs 1 to {MAX_REMOTE_PARTS} aliases.", hint=_PARTS_HINT
        )
    snapshot = queries.catalog.current()
    for alias in register_remote:
        if not _ALIAS.match(alias) or alias in snapshot.tables:
            raise SnapshotInvalid(
                f"'{alias}' cannot be an alias: use lowercase letters, digits and '_', "
                "and no registered table's name.",
                hint=_PARTS_HINT,
            )
    caps = queries.budget.caps()
    parts: dict[str, pa.Table] = {}
    read: list[CatalogTable] = []
    scanned = 0
    costs: list[tuple[int, int | None]] = []  # each part's (bytes scanned, bytes billed)
    for alias, remote_sql in register_remote.items():
        part = queries.run(
            principal, remote_sql, limit=caps.max_result_rows, mode="remote", action="hybrid.remote"
        )
        scanned += part.bytes_scanned
        costs.append((part.bytes_scanned, part.bytes_billed))
        if part.truncated:
            refusal = _cut_part(alias, part)
            queries.audit(principal, "query.hybrid", sql, started, refusal=refusal)
            raise refusal
        parts[alias] = part.table
        read.extend(t for t in part.plan.tables if t not in read)
    try:
        parsed = policy.parse(sql, policy.DUCKDB)
        cross_check(sql, parsed.table_names)
        local = replace(parsed, refs=[r for r in parsed.refs if r.qualified or r.name not in parts])
        plan = plan_local(local, snapshot, queries.access.tables_for(principal))
        sandbox = queries.sandboxes.get(
            [t for t in snapshot.tables.values() if not t.is_remote], snapshot.version
        )
        sandbox.refuse_unreadable(plan.tables)

        def register(cursor: duckdb.DuckDBPyConnection) -> None:
            for alias, table in parts.items():
                cursor.register(alias, table)

        limits = queries.limits(limit)
        result = run_select(sandbox.connection, sql, limits, prepare=register)
    except QueryRefused as refusal:
        queries.audit(principal, "query.hybrid", sql, started, refusal=refusal)
        raise
    plan = replace(plan, tables=[*plan.tables, *(t for t in read if t not in plan.tables)])
    outcome = Outcome(
        table=result.table,
        truncated=result.truncated,
        reason=result.reason,
        plan=plan,
        parsed=parsed,
        engine="duckdb (server) + remote parts",
        bytes_scanned=scanned,
        remaining_budget=queries.budget.remaining(principal),
        seconds=time.perf_counter() - started,
        limits=limits,
        extra={"remote_parts": {a: t.num_rows for a, t in parts.items()}},
    )
    outcome.bytes_billed = billed(costs)
    # each part has its own audit row, which counts (and was charged) its bytes
    queries.audit(principal, "query.hybrid", sql, started, outcome=outcome, parts_audited=True)
    return outcome


def billed(costs: list[tuple[int, int | None]]) -> int | None:
    """What the parts were charged, from each part's (bytes scanned, bytes billed): None
    when no warehouse billed otherwise than by the bytes read (then that is the charge)."""
    if all(bill is None for _, bill in costs):
        return None
    return sum(scanned if bill is None else bill for scanned, bill in costs)


def _cut_part(alias: str, part: Outcome) -> RemotePartTooLarge:
    if part.reason == "bytes":
        limit = f"more than {human_size(part.limits.bytes)} (max_result_bytes)"
        details = {"limit_name": "max_result_bytes", "limit": part.limits.bytes}
    else:
        limit = f"more than {part.limits.rows:,} rows (max_result_rows)"
        details = {"limit_name": "max_result_rows", "limit": part.limits.rows}
    return RemotePartTooLarge(
        f"The remote part '{alias}' holds {limit}; a hybrid query uses each part whole, "
        "so it did not run.",
        details={"alias": alias, **details},
    )
