"""CTEs DuckDB copies into every place that reads them: bounded before it binds them.

A CTE marked ``NOT MATERIALIZED`` is inlined: DuckDB binds and plans its body again at
each reference. A chain of such CTEs each reading the one before twice doubles the plan
at every step, so 22 of them in 1.4 KB of SQL make a plan of millions of nodes, bound
outside the query timeout (the binder does not stop for an interrupt) and outside
``memory_limit`` (61 s and 5 GB before the address space ran out). CTEs DuckDB decides
on itself (no keyword, or ``MATERIALIZED``) are computed once however often they are
read, so they cost what they are written as.

So the query's size with every ``NOT MATERIALIZED`` CTE read copied in is counted on
DuckDB's own parse tree (``json_serialize_sql``), scoped as DuckDB scopes CTE names,
and a query whose copies add more than :data:`MAX_INLINED_NODES` nodes to what it is
written as is refused as ``sql_too_large``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agnes_mcp.rails.refusals import SqlTooLarge
from agnes_mcp.rails.relations import count as count_relations
from agnes_mcp.rails.relations import weight as relation_weight

# Parse-tree nodes the copies of inlined CTEs may add to a query: DuckDB binds and plans
# ~50,000 a second (a chain of 12 such CTEs, 86,000 nodes: 1.6 s).
MAX_INLINED_NODES = 100_000
_NEVER = "CTE_MATERIALIZE_NEVER"


def needs_check(sql: str) -> bool:
    """Whether ``sql`` could mark a CTE ``NOT MATERIALIZED`` (a keyword has no escapes)."""
    return "materialized" in sql.casefold()


def check(tree: Any) -> None:
    """Refuse a query whose inlined CTEs' copies add more than :data:`MAX_INLINED_NODES`
    parse-tree nodes to it."""
    try:
        # an inlined CTE no one reads is not bound at all: no copies, not fewer
        added = max(0, _size(tree, {}, copies=True) - _size(tree, {}, copies=False))
    except RecursionError:
        raise SqlTooLarge("The SQL nests CTEs too deeply to check.") from None
    if added > MAX_INLINED_NODES:
        raise SqlTooLarge(
            f"The query's NOT MATERIALIZED CTEs, copied into every place that reads them, "
            f"add {added:,} parse-tree nodes to it; they may add at most "
            f"{MAX_INLINED_NODES:,}.",
            hint="Drop NOT MATERIALIZED: the answer is the same, and each CTE is then "
            "computed once however often it is read.",
            details={"nodes": added, "limit": MAX_INLINED_NODES},
        )


def relations(tree: Any) -> int:
    """The relations DuckDB plans together at most in ``tree``
    (:func:`agnes_mcp.rails.relations.weight`): a materialized CTE's on their own, an
    inlined CTE's at every read of it."""
    apart: list[int] = []
    try:
        together = _size(tree, {}, copies=True, weight=relation_weight, apart=apart)
    except RecursionError:  # deeper than a walk by scopes: the query's relations all told
        return count_relations(tree)
    return max([together, *apart])


def _one(node: dict[str, Any]) -> int:
    return 1


def _size(
    node: Any,
    inlined: dict[str, int],
    *,
    copies: bool,
    weight: Callable[[dict[str, Any]], int] = _one,
    apart: list[int] | None = None,
) -> int:
    """Nodes under ``node``, a reference to a CTE in ``inlined`` (name -> its size)
    counting as that CTE's whole body (with ``copies``; else no CTE is inlined); with
    ``apart``, a materialized CTE's count goes there instead of into the total. A query
    node's CTEs are in scope in its body and in the CTEs after them; a name defined again
    hides the outer one, whatever its materialization, and a recursive CTE's reads of
    itself are no copies."""
    if isinstance(node, list):
        return sum(_size(item, inlined, copies=copies, weight=weight, apart=apart) for item in node)
    if not isinstance(node, dict):
        return 0
    if node.get("type") == "BASE_TABLE" and not node.get("schema_name"):
        name = str(node.get("table_name") or "").lower()
        if name in inlined:
            return inlined[name]
    scope = inlined
    total = weight(node)
    ctes = node.get("cte_map")
    entries = ctes.get("map") if isinstance(ctes, dict) else None
    if isinstance(entries, list):
        scope = dict(inlined)
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            name = str(entry.get("key") or "").lower()
            value = entry.get("value")
            scope.pop(name, None)  # a recursive CTE reads itself: not a copy of itself
            body = 0
            if isinstance(value, dict):
                body = _size(value, scope, copies=copies, weight=weight, apart=apart)
            if copies and isinstance(value, dict) and value.get("materialized") == _NEVER:
                scope[name] = body  # counted where it is read, not where it is written
            elif apart is not None:
                apart.append(body)
            else:
                total += body
    for key, value in node.items():
        if key != "cte_map":
            total += _size(value, scope, copies=copies, weight=weight, apart=apart)
    return total
