"""Snapshots, server side: a filtered subset of a remote table, estimated then streamed.

A snapshot names a table, the columns to keep, a predicate written in the table's own
SQL flavor (BigQuery for BigQuery tables: ``DATE '2026-01-01'``,
``DATE_SUB(CURRENT_DATE(), INTERVAL 30 DAY)``, ``REGEXP_CONTAINS(col, r'x')``,
``CAST(x AS INT64)``), an order and a limit. The predicate is checked to be only a
predicate (no subqueries, no table references, functions from an allow-list) and a
DuckDB-ism in BigQuery flavor is named with its BigQuery spelling. The query is then
built from sqlglot expressions and goes through the same rails as any other query.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from agnes_mcp.auth.principal import Principal
from agnes_mcp.rails import value_guards
from agnes_mcp.rails.engine import RemoteEngine, engine_class
from agnes_mcp.rails.outcome import Outcome
from agnes_mcp.rails.planner import snapshot_call
from agnes_mcp.rails.refusals import (
    SNAPSHOT_OF_SERVER_TABLE_HINT,
    SnapshotInvalid,
    SnapshotTooLarge,
    TableNotFound,
    next_step,
)
from agnes_mcp.rails.sandbox import Limits, lock_down
from agnes_mcp.rails.snapshot_spec import SnapshotEstimate, SnapshotSpec
from agnes_mcp.rails.tables import CatalogTable
from agnes_mcp.resource_types import ResourceType
from agnes_sync.predicate_binds import bind_problem
from agnes_sync.suggest import did_you_mean

if TYPE_CHECKING:
    from agnes_mcp.query.service import QueryService

_ALLOWED_FUNCTIONS = frozenset(
    {
        # dates and times
        "current_date",
        "current_timestamp",
        "current_datetime",
        "current_time",
        "date",
        "timestamp",
        "datetime",
        "date_sub",
        "date_add",
        "date_diff",
        "datediff",
        "date_trunc",
        "timestamp_sub",
        "timestamp_add",
        "timestamp_trunc",
        "datetime_sub",
        "datetime_add",
        "extract",
        "date_part",
        "make_date",
        "parse_date",
        "parse_timestamp",
        "str_to_date",
        "str_to_time",
        "time_str_to_time",
        "ts_or_ds_to_date",
        "last_day",
        "unix_to_time",
        "timestrtotime",
        "tsordstodate",
        "datetrunc",
        "timestamptrunc",
        "dateadd",
        "datesub",
        "timestampsub",
        "timestampadd",
        "currentdate",
        "currenttimestamp",
        "currentdatetime",
        "todays",
        "to_days",
        # strings
        "lower",
        "upper",
        "length",
        "substr",
        "substring",
        "starts_with",
        "startswith",
        "ends_with",
        "endswith",
        "contains",
        "regexp_contains",
        "regexp_like",
        "regexp_matches",
        "trim",
        "ltrim",
        "rtrim",
        "concat",
        "replace",
        "strpos",
        "left",
        "right",
        # numbers
        "abs",
        "round",
        "floor",
        "ceil",
        "ceiling",
        "mod",
        "sign",
        "least",
        "greatest",
        # nulls and choices
        "coalesce",
        "ifnull",
        "nullif",
        "if",
        "case",
    }
)

# sqlglot models AND/OR, comparisons and casts as functions too; they are operators here.
_OPERATORS: tuple[type[exp.Expr], ...] = (
    exp.Connector,
    exp.Not,
    exp.Predicate,
    exp.Binary,
    exp.Unary,
    exp.Cast,
    exp.TryCast,
)


@dataclass
class Prepared:
    table: CatalogTable
    sql: str
    dialect: str
    # What runs: ``sql`` with one row past the spec's own limit, so a limit that cuts the
    # rows that match is seen (and said), not taken for the whole.
    probe_sql: str = ""


_TYPE_WIDTH = {
    "BOOLEAN": 1,
    "TINYINT": 1,
    "SMALLINT": 2,
    "INTEGER": 4,
    "INT": 4,
    "BIGINT": 8,
    "HUGEINT": 16,
    "FLOAT": 4,
    "DOUBLE": 8,
    "DATE": 4,
    "TIMESTAMP": 8,
    "INT64": 8,
    "FLOAT64": 8,
    "BOOL": 1,
    "NUMERIC": 16,
    "DATETIME": 8,
}


# The largest LIMIT a snapshot's SQL is given: it and the probe's LIMIT + 1 fit the
# engines' BIGINT / INT64 (a limit past it failed in the engine, "out of range for INT64",
# as an error in SQL the caller never wrote); no table has more rows, so it cuts nothing.
SQL_LIMIT_MAX = 2**63 - 2


def _width(type_name: str) -> int:
    base = type_name.upper().split("(")[0].strip()
    return _TYPE_WIDTH.get(base, 16)  # strings and the like: a typical short value


class Snapshots:
    def __init__(self, queries: QueryService) -> None:
        self.queries = queries

    def _table(self, principal: Principal, spec: SnapshotSpec) -> CatalogTable:
        table_id = spec.table_id
        snapshot = self.queries.catalog.current()
        table = snapshot.tables.get(table_id)
        # not granted reads as not there: the catalog does not list it either
        if table is None or not self.queries.access.can_access(
            principal, ResourceType.TABLE, table.id
        ):
            raise TableNotFound(
                f"There is no table '{table_id}' you may read.",
                next=next_step("catalog", "agnes catalog"),
            )
        if not table.is_remote:
            sql = f"SELECT {', '.join(spec.select)} FROM {table.id}"
            sql += f" WHERE {spec.where}" if spec.where else ""
            sql += f" ORDER BY {', '.join(spec.order_by)}" if spec.order_by else ""
            sql += f" LIMIT {spec.limit}" if spec.limit else ""
            raise SnapshotInvalid(
                f"'{table.id}' is held by the server ({table.query_mode}); query or pull it.",
                hint=SNAPSHOT_OF_SERVER_TABLE_HINT,
                next=next_step("query", f'agnes query "{sql}"', sql=sql),
            )
        return table

    def prepare(self, principal: Principal, spec: SnapshotSpec) -> Prepared:
        self.queries.access.require_data_scope(principal)
        table = self._table(principal, spec)
        assert table.remote is not None
        engine_type = engine_class(table.remote.engine)
        dialect = engine_type.dialect
        engine = self.queries.engine_for(table, self.queries.catalog.current().version)
        columns = {c.name.lower(): c for c in engine.describe(table)}
        select = [self._column(c, columns, table) for c in spec.select]
        query = exp.select(*(exp.column(name, quoted=True) for name in select)).from_(
            exp.to_table(table.id, dialect=dialect)
        )
        if spec.where:
            query = query.where(self._predicate(spec.where, engine_type, columns, table))
            if dialect == "duckdb":  # DuckDB's own binder, on no data, before any scan
                problem = bind_problem(spec.where, list(columns.values()), self._locked)
                too_large = value_guards.refusal(problem or "")
                if too_large is not None:
                    raise too_large
                if problem is not None:
                    raise SnapshotInvalid(
                        f"The where clause cannot be applied to {table.id}'s columns: {problem}",
                        hint="Write it in DuckDB's SQL, comparing each column with values of "
                        "its type (its columns and types: schema).",
                        next=next_step("schema", f"agnes schema {table.id}", table=table.id),
                    )
        for item in spec.order_by:
            parts = item.split()
            descending = len(parts) == 2 and parts[1].lower() == "desc"
            if len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
                raise SnapshotInvalid(f"order_by item '{item}' is not 'column [ASC|DESC]'.")
            column = self._column(parts[0], columns, table)
            query = query.order_by(
                exp.Ordered(this=exp.column(column, quoted=True), desc=descending)
            )
        probe = query.copy()
        if spec.limit:
            limit = min(spec.limit, SQL_LIMIT_MAX)
            query = query.limit(limit)
            probe = probe.limit(limit + 1)
        return Prepared(
            table=table,
            sql=query.sql(dialect=dialect),
            dialect=dialect,
            probe_sql=probe.sql(dialect=dialect),
        )

    def _locked(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB for binding a caller's predicate: locked, value-guarded and
        memory-limited as the connection a query runs on (binding folds constants)."""
        con = duckdb.connect()
        lock_down(con, [], memory_limit=self.queries.settings.query_memory_limit, threads=1)
        return con

    def _column(self, name: str, columns: Mapping[str, object], table: CatalogTable) -> str:
        key = name.strip().strip('"`').lower()
        if key not in columns:
            suggestion = did_you_mean(key, columns)
            raise SnapshotInvalid(
                f"'{name}' is not a column of {table.id}.",
                hint=f"{suggestion}Columns: {', '.join(columns)}.",
                next=next_step("schema", f"agnes schema {table.id}", table=table.id),
            )
        return key

    def _predicate(
        self,
        text: str,
        engine_type: type[RemoteEngine],
        columns: Mapping[str, object],
        table: CatalogTable,
    ) -> exp.Expr:
        dialect = engine_type.dialect
        foreign = engine_type.foreign_syntax(text, table.id)
        if foreign is not None:
            raise SnapshotInvalid(
                foreign,
                hint=f"Write the predicate in the warehouse's own SQL ({engine_type.name}).",
            )
        try:
            condition = sqlglot.condition(text, dialect=dialect)
        except (ParseError, TokenError) as exc:
            said = str(exc).splitlines()[0]
            if "into <class" in said:  # sqlglot's words for "not one expression"
                said = "it is not one predicate (a ';' or a second statement?)"
            raise SnapshotInvalid(
                f"The where clause does not parse as a {dialect} predicate: {said}"
            ) from None
        for node in condition.walk():
            if isinstance(node, (exp.Subquery, exp.Select, exp.Table, exp.Star, exp.Query)):
                raise SnapshotInvalid(
                    "The where clause may not hold subqueries or table references."
                )
            if isinstance(node, exp.AggFunc):
                raise SnapshotInvalid("The where clause may not aggregate.")
            if isinstance(node, exp.Func) and not isinstance(node, _OPERATORS):
                name = (
                    node.name.lower()
                    if isinstance(node, exp.Anonymous)
                    else node.sql_name().lower()
                )
                if (
                    name not in _ALLOWED_FUNCTIONS
                    and type(node).__name__.lower() not in _ALLOWED_FUNCTIONS
                ):
                    raise SnapshotInvalid(
                        f"The function {name}() is not allowed in a snapshot predicate.",
                        hint="Use comparisons, dates, string and null functions only.",
                    )
            if isinstance(node, exp.Column) and node.name.lower() not in columns:
                self._column(node.name, columns, table)
        return condition

    def estimate(self, principal: Principal, spec: SnapshotSpec) -> SnapshotEstimate:
        return self._estimate(principal, spec, self.prepare(principal, spec))

    def _estimate(
        self, principal: Principal, spec: SnapshotSpec, prepared: Prepared
    ) -> SnapshotEstimate:
        outcome = self.queries.estimate(principal, prepared.sql)
        engine = self.queries.engine_for(prepared.table, self.queries.catalog.current().version)
        widths = {c.name.lower(): _width(c.type) for c in engine.describe(prepared.table)}
        rows = outcome.result_rows
        if rows is not None and spec.limit is not None:
            rows = min(rows, spec.limit)
        row_bytes = sum(widths.get(c.strip().strip('"`').lower(), 16) for c in spec.select)
        result_bytes = rows * row_bytes if rows is not None else None
        caps = self.queries.budget.caps()
        blocked_by = _first_limit_hit(
            (outcome.scan_bytes > outcome.limit_bytes, "per_query_bytes"),
            (outcome.scan_bytes > outcome.remaining_budget_bytes, "per_user_daily_bytes"),
            (rows is not None and rows > caps.max_snapshot_rows, "max_snapshot_rows"),
            (
                result_bytes is not None and result_bytes > caps.max_snapshot_bytes,
                "max_snapshot_bytes",
            ),
        )
        return SnapshotEstimate(
            table_id=prepared.table.id,
            estimated_scan_bytes=outcome.scan_bytes,
            estimated_result_rows=rows,
            estimated_result_bytes=result_bytes,
            limit_bytes=outcome.limit_bytes,
            remaining_budget_bytes=outcome.remaining_budget_bytes,
            sql=prepared.sql,
            max_snapshot_rows=caps.max_snapshot_rows,
            max_snapshot_bytes=caps.max_snapshot_bytes,
            fits_cap=blocked_by is None,
            blocked_by=blocked_by,
        )

    def create(self, principal: Principal, spec: SnapshotSpec) -> tuple[Prepared, Outcome]:
        """Every row the filter matches (up to the spec's own limit), or a refusal: a
        snapshot is never cut by a cap and presented as whole."""
        prepared = self.prepare(principal, spec)
        caps = self.queries.budget.caps()
        asked = (
            spec.limit if spec.limit is not None and spec.limit <= caps.max_snapshot_rows else None
        )
        limits = Limits(
            rows=asked or caps.max_snapshot_rows,
            bytes=caps.max_snapshot_bytes,
            timeout_seconds=self.queries.settings.query_timeout_seconds,
            rows_source="requested" if asked else "cap",
        )
        outcome = self.queries.run(
            principal, prepared.probe_sql, mode="remote", action="snapshot.create", limits=limits
        )
        if outcome.truncated and not (asked and outcome.reason == "rows"):
            raise self._too_large(prepared, spec, outcome, caps.max_snapshot_rows, limits)
        return prepared, outcome

    def _too_large(
        self,
        prepared: Prepared,
        spec: SnapshotSpec,
        outcome: Outcome,
        cap_rows: int,
        limits: Limits,
    ) -> SnapshotTooLarge:
        if outcome.reason == "bytes":
            what = (
                f"more than {limits.bytes:,} bytes (the cap max_snapshot_bytes) after "
                f"{outcome.table.num_rows:,} rows"
            )
        else:
            what = f"more than {cap_rows:,} rows (the cap max_snapshot_rows)"
        step = snapshot_call(prepared.table)
        arguments = step.get("arguments")
        if isinstance(arguments, dict):
            arguments["select"] = list(spec.select)
        billed = outcome.bytes_billed  # what the warehouse billed, where not the scan
        charged = outcome.bytes_scanned if billed is None else billed
        return SnapshotTooLarge(
            f"The snapshot of {prepared.table.id} would hold {what}; nothing was kept. The "
            f"scan ({charged:,} bytes{'' if billed is None else ' billed'}) was charged to "
            "your budget.",
            next=step,
            details={
                "table": prepared.table.id,
                "rows_fetched": outcome.table.num_rows,
                "max_snapshot_rows": cap_rows,
                "max_snapshot_bytes": limits.bytes,
                "bytes_scanned": outcome.bytes_scanned,
                **({} if billed is None else {"bytes_billed": billed}),
            },
        )


def _first_limit_hit(*checks: tuple[bool, str]) -> str | None:
    return next((name for hit, name in checks if hit), None)
