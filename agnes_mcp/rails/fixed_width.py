"""Whether a query's answer will hold only fixed-width columns, foreseen from its parse
tree and the catalog's column types, before DuckDB binds it.

An answer with a text, list, struct or map column has each row's size tested by DuckDB
(:func:`result_meter.row_guarded_sql`), which needs its types bound first (~0.1 ms). An
answer of numbers, dates and booleans needs no test: a batch of 2,048 such rows is a few
hundred KB. ``SELECT count(*), max(price) FROM t`` is foreseen as such and runs without
the bind. The foresight is never trusted alone: the answer's Arrow schema, which DuckDB
gives before a row is converted, is checked (:func:`result_meter.fixed_width_schema`),
and an answer that has a variable-width column after all runs again guarded. So a wrong
foresight costs time, never the byte cap; it says False whenever in doubt.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlglot import exp

from agnes_mcp.rails.tables import CatalogTable

# Catalog types whose values DuckDB hands to Arrow at a fixed width (UHUGEINT and TIME
# WITH TIME ZONE are not among them: an answer casts them to text).
_FIXED_TYPE = re.compile(
    r"(?:U?(?:TINYINT|SMALLINT|INTEGER|BIGINT)|HUGEINT|FLOAT|DOUBLE|BOOLEAN|DATE|TIME|"
    r"TIMESTAMP(?:_S|_MS|_NS| WITH TIME ZONE)?|DECIMAL\(\d+, ?\d+\)|INTERVAL)"
)
_FIXED_CAST = frozenset(
    {
        exp.DataType.Type.TINYINT,
        exp.DataType.Type.SMALLINT,
        exp.DataType.Type.INT,
        exp.DataType.Type.BIGINT,
        exp.DataType.Type.UTINYINT,
        exp.DataType.Type.USMALLINT,
        exp.DataType.Type.UINT,
        exp.DataType.Type.UBIGINT,
        exp.DataType.Type.FLOAT,
        exp.DataType.Type.DOUBLE,
        exp.DataType.Type.BOOLEAN,
        exp.DataType.Type.DATE,
    }
)
# Aggregates whose value has their argument's type, or a number.
_AGGREGATES = (exp.Sum, exp.Avg, exp.Min, exp.Max)
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod)


def fixed_width(tree: exp.Expression, tables: Iterable[CatalogTable]) -> bool:
    """Whether ``tree`` (one SELECT the rails accepted) answers only fixed-width columns:
    a plain SELECT (no CTE, set operation or derived table) over catalog tables whose
    every column is a count, a number, a boolean, NULL, a column whose type is of fixed
    width in every table read that has a column of that name, an aggregate (sum, avg,
    min, max of one argument) or arithmetic of those, or a cast to a number or a date."""
    if not isinstance(tree, exp.Select) or tree.args.get("with_") or tree.args.get("with"):
        return False
    source = tree.args.get("from_")
    sources = [source.this] if isinstance(source, exp.From) else []
    sources += [join.this for join in tree.args.get("joins") or []]
    if not sources or not all(_plain_table(s) for s in sources):
        return False
    types: dict[str, set[str]] = {}
    for table in tables:
        for name, kind in table.columns:
            types.setdefault(name.lower(), set()).add(kind)
    return bool(tree.expressions) and all(
        _fixed(e.this if isinstance(e, exp.Alias) else e, types) for e in tree.expressions
    )


def _plain_table(node: exp.Expression) -> bool:
    return isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier)


def _fixed(node: exp.Expression, types: dict[str, set[str]]) -> bool:
    if isinstance(node, exp.Paren | exp.Neg):
        return _fixed(node.this, types)
    if isinstance(node, exp.Count):
        return True
    if isinstance(node, exp.Literal):
        return not node.is_string
    if isinstance(node, exp.Boolean | exp.Null):
        return True
    if isinstance(node, exp.Column):
        if not isinstance(node.this, exp.Identifier):  # a star, a positional reference
            return False
        kinds = types.get(node.name.lower(), set())
        return bool(kinds) and all(_FIXED_TYPE.fullmatch(kind) for kind in kinds)
    if isinstance(node, _AGGREGATES):
        # only the argument: max(x, n) is a list, a FILTER or an ORDER BY a place to hide
        others = [key for key, value in node.args.items() if value is not None and key != "this"]
        return not others and _fixed(node.this, types)
    if isinstance(node, _ARITHMETIC):
        return _fixed(node.this, types) and _fixed(node.expression, types)
    if isinstance(node, exp.Cast):  # TRY_CAST too (a subclass)
        return node.to.this in _FIXED_CAST and not node.to.expressions
    return False
