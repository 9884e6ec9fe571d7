"""Estimating what a DuckDB scan reads, from storage metadata alone (``pragma_storage_info``).

Each (row group, column) is stored in segments inside fixed-size blocks; a cold scan
reads whole blocks. The estimate is therefore: the distinct blocks holding the
referenced columns of the row groups that the query's predicates cannot rule out,
times the block size. Row groups are ruled out with the segments' min/max statistics
for simple predicates (``col op literal``, ``BETWEEN``, ``IN``) on numeric and temporal
columns; string statistics are truncated prefixes, so they are not used to prune.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import duckdb
from sqlglot import exp

_ORDERED = (int, float, Decimal, dt.date, dt.datetime)


@dataclass
class RowGroup:
    rows: int = 0
    blocks: dict[str, set[int]] = field(default_factory=dict)  # column -> block ids
    bounds: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # column -> (min, max)


@dataclass
class TableLayout:
    columns: list[str]
    row_groups: dict[int, RowGroup]
    block_size: int

    def estimate(
        self, columns: set[str] | None, ranges: dict[str, list[tuple[str, Any]]]
    ) -> tuple[int, int]:
        """(bytes a cold scan reads, rows in the row groups kept) for ``columns``
        (``None`` = all) under ``ranges`` (column -> [(operator, value), ...])."""
        wanted = set(self.columns) if columns is None else (columns & set(self.columns))
        # No column read (a bare count(*)): DuckDB answers from row-group metadata.
        blocks: set[int] = set()
        rows = 0
        for group in self.row_groups.values():
            if not _may_match(group, ranges):
                continue
            rows += group.rows
            for column in wanted:
                blocks |= group.blocks.get(column, set())
        return len(blocks) * self.block_size, rows


def _may_match(group: RowGroup, ranges: dict[str, list[tuple[str, Any]]]) -> bool:
    for column, conditions in ranges.items():
        bounds = group.bounds.get(column)
        if bounds is None:
            continue
        low, high = bounds
        for operator, value in conditions:
            if not _overlaps(low, high, operator, value):
                return False
    return True


def _comparable(a: Any, b: Any) -> bool:
    if isinstance(a, dt.datetime) != isinstance(b, dt.datetime):
        return False
    return (
        isinstance(a, _ORDERED)
        and isinstance(b, _ORDERED)
        and (isinstance(a, dt.date) == isinstance(b, dt.date))
    )


def _coerce(stat: Any, value: Any) -> Any:
    """A DATE statistic against a TIMESTAMP literal (``DATE '...' - INTERVAL 7 DAY``):
    compare both as timestamps."""
    if (
        isinstance(value, dt.datetime)
        and isinstance(stat, dt.date)
        and not isinstance(stat, dt.datetime)
    ):
        return dt.datetime(stat.year, stat.month, stat.day, tzinfo=value.tzinfo)
    return stat


def _overlaps(low: Any, high: Any, operator: str, value: Any) -> bool:
    """Whether any value in [low, high] can satisfy ``column <operator> value``."""
    if operator == "in":
        return any(_overlaps(low, high, "=", v) for v in value)
    low, high = _coerce(low, value), _coerce(high, value)
    if not (_comparable(low, value) and _comparable(high, value)):
        return True  # unknown: keep the row group
    if operator == "=":
        return bool(low <= value <= high)
    if operator == ">":
        return bool(high > value)
    if operator == ">=":
        return bool(high >= value)
    if operator == "<":
        return bool(low < value)
    if operator == "<=":
        return bool(low <= value)
    return True


def read_layout(con: duckdb.DuckDBPyConnection, qualified: str, block_size: int) -> TableLayout:
    """The storage layout of ``qualified`` (``catalog.schema.table``)."""
    rows = con.execute(
        "SELECT row_group_id, column_name, column_path, segment_type, count, stats, block_id, "
        "additional_block_ids FROM pragma_storage_info(?)",
        [qualified],
    ).fetchall()
    columns: list[str] = []
    groups: dict[int, RowGroup] = {}
    for rg, column, path, segment_type, count, stats, block, extra in rows:
        if column not in columns:
            columns.append(column)
        group = groups.setdefault(rg, RowGroup())
        is_data = path.count(",") == 0  # "[3]" is the column itself, "[3, 0]" its validity
        if is_data and column == columns[0]:
            group.rows += int(count)
        if block is not None and block >= 0:
            group.blocks.setdefault(column, set()).add(int(block))
        for more in extra or []:
            group.blocks.setdefault(column, set()).add(int(more))
        if is_data and isinstance(stats, dict) and segment_type != "VARCHAR":
            low, high = stats.get("min"), stats.get("max")
            if low is not None and high is not None:
                previous = group.bounds.get(column)
                if previous is None:
                    group.bounds[column] = (low, high)
                elif _comparable(previous[0], low):
                    group.bounds[column] = (min(previous[0], low), max(previous[1], high))
    return TableLayout(columns=columns, row_groups=groups, block_size=block_size)


# --- what a query references --------------------------------------------------------------

_OPERATORS: dict[type[exp.Expr], str] = {
    exp.EQ: "=",
    exp.GT: ">",
    exp.GTE: ">=",
    exp.LT: "<",
    exp.LTE: "<=",
}
_FLIPPED = {"=": "=", ">": "<", ">=": "<=", "<": ">", "<=": ">="}


class LiteralEvaluator:
    """Evaluates column-free expressions (``DATE '2026-01-01' - INTERVAL 7 DAY``) with
    DuckDB, in a connection that cannot reach any file."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _con(self) -> duckdb.DuckDBPyConnection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = duckdb.connect()
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
        return con

    def value(self, expression: exp.Expression, dialect: str) -> Any:
        if any(True for _ in expression.find_all(exp.Column, exp.Subquery, exp.Table)):
            raise ValueError("not a literal")
        sql = (
            expression.sql(dialect="duckdb")
            if dialect == "duckdb"
            else expression.sql(dialect=dialect)
        )
        row = self._con().execute(f"SELECT {sql}").fetchone()
        return row[0] if row else None


def _conjuncts(where: exp.Expr | None) -> list[exp.Expr]:
    if where is None:
        return []
    if isinstance(where, exp.Where):
        where = where.this
    if isinstance(where, exp.And):
        return _conjuncts(where.left) + _conjuncts(where.right)
    if isinstance(where, exp.Paren):
        return _conjuncts(where.this)
    return [where]


def predicate_ranges(
    tree: exp.Expression, names: set[str], evaluator: LiteralEvaluator, dialect: str
) -> dict[str, list[tuple[str, Any]]]:
    """(column -> conditions) from the WHERE clauses' top-level ANDs that constrain a column
    of the table known as any of ``names`` (its alias or name) or an unqualified column."""
    ranges: dict[str, list[tuple[str, Any]]] = {}
    for select in tree.find_all(exp.Select):
        for condition in _conjuncts(select.args.get("where")):
            for column, operator, value_node in _simple(condition):
                if column.table and column.table.lower() not in names:
                    continue
                try:
                    value = (
                        [evaluator.value(v, dialect) for v in value_node]
                        if operator == "in"
                        else evaluator.value(value_node, dialect)
                    )
                except (ValueError, duckdb.Error):
                    continue
                ranges.setdefault(column.name.lower(), []).append((operator, value))
    return ranges


def _simple(condition: exp.Expr) -> list[tuple[exp.Column, str, Any]]:
    if isinstance(condition, exp.Between) and isinstance(condition.this, exp.Column):
        return [
            (condition.this, ">=", condition.args["low"]),
            (condition.this, "<=", condition.args["high"]),
        ]
    if isinstance(condition, exp.In) and isinstance(condition.this, exp.Column):
        values = condition.expressions
        if values and not condition.args.get("query"):
            return [(condition.this, "in", values)]
        return []
    operator = _OPERATORS.get(type(condition))
    if operator is None or not isinstance(condition, exp.Binary):
        return []
    left, right = condition.left, condition.right
    if isinstance(left, exp.Column) and not isinstance(right, exp.Column):
        return [(left, operator, right)]
    if isinstance(right, exp.Column) and not isinstance(left, exp.Column):
        return [(right, _FLIPPED[operator], left)]
    return []


def referenced_columns(
    tree: exp.Expression, names: set[str], columns: list[str]
) -> set[str] | None:
    """Columns of the table (known as any of ``names``) the query reads; ``None`` = all."""
    known = {c.lower() for c in columns}
    used: set[str] = set()
    for node in tree.find_all(exp.Star, exp.Column):
        if not isinstance(node, exp.Column):
            parent = node.parent
            if isinstance(parent, exp.Column):
                continue  # t.* is handled below as a Column whose this is Star
            if isinstance(parent, (exp.Count,)):
                continue  # count(*) reads no column
            return None
        if isinstance(node.this, exp.Star):
            if not node.table or node.table.lower() in names:
                return None
            continue
        if node.table and node.table.lower() not in names:
            continue
        if node.name.lower() in known:
            used.add(node.name.lower())
    return used
