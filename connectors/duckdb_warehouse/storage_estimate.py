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
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

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

    def kept(self, ranges: dict[str, list[tuple[str, Any]]]) -> set[int]:
        """Row groups ``ranges`` cannot rule out."""
        return {rg for rg, group in self.row_groups.items() if _may_match(group, ranges)}

    def cost(self, columns: set[str] | None, groups: set[int]) -> tuple[int, int]:
        """(bytes a cold scan of ``columns`` (None = all) in ``groups`` reads, their rows)."""
        wanted = set(self.columns) if columns is None else (columns & set(self.columns))
        blocks: set[int] = set()
        rows = 0
        for rg in groups:
            group = self.row_groups[rg]
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


def _decidable(value: Any) -> bool:
    """Whether min/max statistics can decide a comparison with ``value``: not NaN (DuckDB
    orders NaN above every number, Python compares it false with all), not infinite."""
    return not (isinstance(value, float) and not math.isfinite(value))


def _overlaps(low: Any, high: Any, operator: str, value: Any) -> bool:
    """Whether any value in [low, high] can satisfy ``column <operator> value``."""
    if operator == "in":
        return any(_overlaps(low, high, "=", v) for v in value)
    if not (_decidable(value) and _decidable(low) and _decidable(high)):
        return True
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


class Literals(Protocol):
    """Evaluates a column-free expression of a predicate; ``ValueError`` when it is not one
    (or cannot be evaluated safely): such a predicate prunes nothing."""

    def value(self, expression: exp.Expression, dialect: str) -> Any: ...


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


def scan_ranges(
    scan: exp.Table, names: set[str], evaluator: Literals, dialect: str
) -> dict[str, list[tuple[str, Any]]]:
    """(column -> conditions) that prune one scan of the table: only the top-level ANDs of
    the WHERE of the SELECT whose FROM (or inner join) holds ``scan``, on columns qualified
    by this scan's name or unqualified when the SELECT reads this one source. Predicates
    elsewhere (another branch, a subquery, an unused CTE) never prune this scan."""
    select = scan.parent_select
    if select is None or not _prunable_position(scan, select):
        return {}
    alias = (scan.alias or scan.name).lower()
    sources = list(select.find_all(exp.Table))
    single = len([t for t in sources if t.parent_select is select]) == 1
    ranges: dict[str, list[tuple[str, Any]]] = {}
    for condition in _conjuncts(select.args.get("where")):
        for column, operator, value_node in _simple(condition):
            qualifier = column.table.lower() if column.table else None
            if qualifier is not None and qualifier != alias:
                continue
            if qualifier is None and not single:
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


def _prunable_position(scan: exp.Table, select: exp.Select) -> bool:
    """The scan is the SELECT's FROM source or an inner join's (an outer join's rows are
    not all filtered by the WHERE before they are read)."""
    parent = scan.parent
    if isinstance(parent, exp.From) and parent.parent is select:
        return not any(
            (j.args.get("side") or "").upper() in ("RIGHT", "FULL")
            for j in select.args.get("joins") or []
        )
    if isinstance(parent, exp.Join) and parent.parent is select:
        side = (parent.args.get("side") or "").upper()
        return side in ("", "INNER") and (parent.args.get("kind") or "").upper() != "CROSS"
    return False


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
    """Columns of the table (known as any of ``names``) the query reads; ``None`` = all.

    Conservative: anything that can read columns it does not name counts every column —
    ``*`` (but ``count(*)``), ``t.*``, a whole-row reference (``max(w)``, ``to_json(w)``,
    the table name as a value), ``COLUMNS(...)``, positional references (``#3``), and
    ``NATURAL``/``USING`` joins, and DuckDB's method-call syntax (``col.lower()``: sqlglot
    reads it as a ``Dot`` over bare identifiers, with no ``Column`` to count, and such a
    query was priced at 0 bytes); a ``PIVOT`` (without ``GROUP BY`` it groups by every
    column it does not name) or ``UNPIVOT``; and the table read under new column names
    (``FROM t AS w(a, b)``: ``max(b)`` names no column of ``t``, and was priced at 0)."""
    known = {c.lower() for c in columns}
    if any(True for _ in tree.find_all(exp.Columns, exp.PositionalColumn, exp.Dot, exp.Pivot)):
        return None
    for table in tree.find_all(exp.Table):
        renamed = table.args.get("alias")
        if table.name.lower() in names and renamed is not None and renamed.columns:
            return None
    for join in tree.find_all(exp.Join):
        if join.args.get("method") or join.args.get("using"):
            return None
    used: set[str] = set()
    for node in tree.find_all(exp.Star, exp.Column):
        if not isinstance(node, exp.Column):
            parent = node.parent
            if isinstance(parent, exp.Column):
                continue  # t.* is handled below as a Column whose this is Star
            if isinstance(parent, exp.Count):
                continue  # count(*) reads no column
            return None
        if isinstance(node.this, exp.Star):
            if not node.table or node.table.lower() in names:
                return None
            continue
        name = node.name.lower()
        if not node.table and name in names and name not in known:
            return None  # the row itself, as a value
        if node.table and node.table.lower() not in names:
            continue
        if name in known:
            used.add(name)
    return used
