"""How many relations a query joins: bounded before DuckDB plans it.

DuckDB's join-order optimizer does not stop for an interrupt, and its time grows steeply
with the relations of a join: 300 joins of a 7-row table (27 KB of SQL) were planned for
115 s against a 30 s timeout, 100 for ~4 s, 64 for under 1 s. So the relations a query
names — tables (a CTE's name too), subqueries (in ``FROM`` or in an expression, which
DuckDB plans as joins), table functions, ``VALUES`` lists and ``PIVOT`` — are counted on
DuckDB's own parse tree, a ``NOT MATERIALIZED`` CTE's at every read of it (it is planned
there again: :mod:`inlined_ctes`), and a query of more than :data:`MAX_RELATIONS` is
refused as ``sql_too_large``.
"""

from __future__ import annotations

from typing import Any

from agnes_mcp.rails.refusals import SqlTooLarge

MAX_RELATIONS = 64
_RELATIONS = frozenset({"BASE_TABLE", "SUBQUERY", "TABLE_FUNCTION", "EXPRESSION_LIST", "PIVOT"})


def needs_check(sql: str) -> bool:
    """Whether ``sql`` could name more than :data:`MAX_RELATIONS` relations: each one
    follows a comma, ``JOIN`` or ``FROM``, or is a subquery (``SELECT``, ``TABLE``), a
    ``VALUES`` list or a ``PIVOT``."""
    folded = sql.casefold()
    marks = sum(
        folded.count(mark) for mark in (",", "join", "from", "select", "table", "values", "pivot")
    )
    return marks >= MAX_RELATIONS


def over(serialized: str) -> bool:
    """Whether DuckDB's parse tree as JSON text (``json_serialize_sql``) holds more than
    :data:`MAX_RELATIONS` relation nodes, all told: an upper bound of what
    :func:`agnes_mcp.rails.inlined_ctes.relations` counts without inlined CTEs (a string
    in the query holding the same text is escaped there, so it cannot lower the count)."""
    return sum(serialized.count(f'"type":"{kind}"') for kind in _RELATIONS) > MAX_RELATIONS


def weight(node: dict[str, Any]) -> int:
    """1 for a node of DuckDB's parse tree that is a relation, else 0."""
    return 1 if node.get("type") in _RELATIONS else 0


def count(tree: Any) -> int:
    """The relations in ``tree``, each CTE counted once."""
    found = 0
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found += weight(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def check(relations: int) -> None:
    """Refuse a query of more than :data:`MAX_RELATIONS` relations."""
    if relations > MAX_RELATIONS:
        raise SqlTooLarge(
            f"The query names {relations:,} relations (tables, subqueries, VALUES lists, "
            f"table functions); a query may name at most {MAX_RELATIONS}: planning the "
            "order of that many joins takes longer than any timeout can stop.",
            hint="Join fewer relations in one query: aggregate or filter in steps, or keep a "
            "result and query it.",
            details={"relations": relations, "limit": MAX_RELATIONS},
        )
