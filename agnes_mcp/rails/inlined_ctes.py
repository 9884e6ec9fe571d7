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

from typing import Any

from agnes_mcp.rails.refusals import SqlTooLarge

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
        added = _size(tree, {}, copies=True) - _size(tree, {}, copies=False)
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


def _size(node: Any, inlined: dict[str, int], *, copies: bool) -> int:
    """Nodes under ``node``, a reference to a CTE in ``inlined`` (name -> its size)
    counting as that CTE's whole body (with ``copies``; else no CTE is inlined). A query
    node's CTEs are in scope in its body and in the CTEs after them; a name defined again
    hides the outer one, whatever its materialization, and a recursive CTE's reads of
    itself are no copies."""
    if isinstance(node, list):
        return sum(_size(item, inlined, copies=copies) for item in node)
    if not isinstance(node, dict):
        return 0
    if node.get("type") == "BASE_TABLE" and not node.get("schema_name"):
        name = str(node.get("table_name") or "").lower()
        if name in inlined:
            return inlined[name]
    scope = inlined
    total = 1
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
            body = _size(value, scope, copies=copies) if isinstance(value, dict) else 0
            total += body
            if copies and isinstance(value, dict) and value.get("materialized") == _NEVER:
                scope[name] = body
    for key, value in node.items():
        if key != "cte_map":
            total += _size(value, scope, copies=copies)
    return total
