"""A registration's row filter (``where_filters``, a SQL predicate) as Keboola ``whereFilters``.

Keboola filters one column at a time (``eq``/``ne`` over a list of values, ``gt``/``ge``/
``lt``/``le`` over one), all joined by AND. Each top-level AND term of the predicate that
has one of these shapes is sent along, so Keboola exports fewer rows:

    country = 'US'              -> {"column": "country", "operator": "eq", "values": ["US"]}
    country IN ('US', 'CA')     -> {"column": "country", "operator": "eq", "values": [...]}
    status NOT IN ('x')         -> {"column": "status", "operator": "ne", "values": ["x"]}
    amount > 10                 -> {..., "operator": "gt", "values": ["10"], "dataType": "DOUBLE"}

Anything else (OR, functions, column-to-column comparisons) stays local. The whole
predicate is applied again in DuckDB after the download, so a term Keboola evaluates a
little more loosely (string versus number) never lets a row through. Applied locally, a
column of text compared with a number reads as Keboola reads it (``dataType: DOUBLE``,
its ``try_to_double``): :func:`local_predicate` casts it with ``TRY_CAST(... AS DOUBLE)``
(on an untyped table every column is text, and ``amount > 10`` was a binder error).
"""

from __future__ import annotations

from typing import Any

import sqlglot
from sqlglot import exp

from agnes_sync.strategies import checked_filter

_OPERATORS: dict[type[exp.Expr], str] = {
    exp.EQ: "eq",
    exp.NEQ: "ne",
    exp.GT: "gt",
    exp.GTE: "ge",
    exp.LT: "lt",
    exp.LTE: "le",
}
_MIRRORED = {"gt": "lt", "ge": "le", "lt": "gt", "le": "ge", "eq": "eq", "ne": "ne"}


def where_filters(predicate: str | None, columns: set[str]) -> list[dict[str, Any]]:
    """The Keboola filters implied by ``predicate`` (checked as the engine checks it)."""
    checked = checked_filter(predicate)
    if checked is None:
        return []
    condition = sqlglot.condition(checked, dialect="duckdb")
    terms = list(condition.flatten()) if isinstance(condition, exp.And) else [condition]
    found = []
    for term in terms:
        translated = _term(term.unnest(), columns)
        if translated is not None:
            found.append(translated)
    return found


def local_predicate(predicate: str | None, types: dict[str, str]) -> str | None:
    """``predicate`` as DuckDB applies it to the export: a text column (by ``types``,
    name -> DuckDB type) compared with numbers compares as a number, as Keboola does."""
    checked = checked_filter(predicate)
    if checked is None:
        return None
    condition = sqlglot.condition(checked, dialect="duckdb")

    def as_number(node: exp.Expr) -> exp.Expr:
        text = isinstance(node, exp.Column) and types.get(node.name, "").upper() == "VARCHAR"
        if text and not node.args.get("table"):
            return exp.TryCast(this=node.copy(), to=exp.DataType.build("DOUBLE"))
        return node

    def numeric(node: exp.Expr) -> bool:
        found = _literal(node)
        return found is not None and found[1]

    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Between):
            if numeric(node.args["low"]) and numeric(node.args["high"]):
                node.set("this", as_number(node.this))
        elif isinstance(node, exp.In) and not node.args.get("query"):
            values = node.expressions
            if values and all(numeric(v) for v in values):
                node.set("this", as_number(node.this))
        elif type(node) in _OPERATORS and isinstance(node, exp.Binary):
            if numeric(node.right):
                node.set("this", as_number(node.left))
            elif numeric(node.left):
                node.set("expression", as_number(node.right))
        return node

    return condition.transform(fix, copy=True).sql(dialect="duckdb")


def _term(term: exp.Expr, columns: set[str]) -> dict[str, Any] | None:
    negated = isinstance(term, exp.Not)
    inner = term.this.unnest() if negated else term
    if isinstance(inner, exp.In) and isinstance(inner.this, exp.Column):
        if inner.args.get("query") or inner.args.get("unnest"):
            return None
        found = [_literal(v) for v in inner.expressions]
        values = [v for v in found if v is not None]
        if not values or len(values) != len(found):
            return None
        return _filter(inner.this, "ne" if negated else "eq", values, columns)
    if negated:
        return None
    operator = _OPERATORS.get(type(inner))
    if operator is None or not isinstance(inner, exp.Binary):
        return None
    left, right = inner.left, inner.right
    if isinstance(right, exp.Column) and not isinstance(left, exp.Column):
        left, right, operator = right, left, _MIRRORED[operator]
    value = _literal(right)
    if not isinstance(left, exp.Column) or value is None:
        return None
    if operator not in ("eq", "ne") and not value[1]:
        return None  # ranges only over numbers: Keboola would compare strings as text
    return _filter(left, operator, [value], columns)


def _literal(node: exp.Expr) -> tuple[str, bool] | None:
    """A literal's text and whether it is a number (a negative number included)."""
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and node.this.is_number:
        return f"-{node.this.this}", True
    if isinstance(node, exp.Literal):
        return str(node.this), bool(node.is_number)
    return None


def _filter(
    column: exp.Column, operator: str, values: list[tuple[str, bool]], columns: set[str]
) -> dict[str, Any] | None:
    if column.table or column.name not in columns:
        return None
    numeric = {is_number for _, is_number in values}
    if len(numeric) != 1:
        return None
    found: dict[str, Any] = {
        "column": column.name,
        "operator": operator,
        "values": [text for text, _ in values],
    }
    if numeric == {True}:
        found["dataType"] = "DOUBLE"
    return found
