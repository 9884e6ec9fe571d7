"""Aggregates that build a value as large as their frame, used as window functions.

``list(x) OVER ()`` is one list of the whole table, given to every row: DuckDB holds it
once, but an answer is converted to Arrow 2,048 rows at a time, and each row gets its own
copy, outside ``memory_limit`` (200,000 orders: 2.5 GB; a million: 16 GB; the same for
``string_agg``, ``json_group_array``, ``histogram``). So such an aggregate may run over a
window only on a frame of at most :data:`MAX_FRAME_ROWS` rows written as constants
(``ROWS BETWEEN 6 PRECEDING AND CURRENT ROW``); any other frame (the whole partition,
``UNBOUNDED``, ``RANGE``, ``GROUPS``) is refused as ``value_too_large``, checked on
DuckDB's own parse tree (named windows are resolved there). A top-n aggregate
(``max(x, n)``, ``arg_max(x, y, n)``, ``approx_top_k``, ``lttb``) holds n items, so a
literal n of at most :data:`MAX_FRAME_ROWS` takes any frame. As a plain aggregate (one
value a group) each is unchanged.
"""

from __future__ import annotations

from typing import Any

from agnes_mcp.rails.value_guards import ValueTooLarge, _arguments, nodes

MAX_FRAME_ROWS = 100
# aggregates whose value grows with the rows they read
GROWING = frozenset(
    {
        "list",
        "array_agg",
        "string_agg",
        "group_concat",
        "listagg",
        "histogram",
        "histogram_exact",
        "json_group_array",
        "json_group_object",
        "json_group_structure",
        "bitstring_agg",
        "variant_group_object",
    }
)
# ... and those whose value holds as many items as their "n" argument says (the n largest,
# n points): name -> the position of n. A literal n of at most MAX_FRAME_ROWS is bounded.
TOP_N = {
    "max": 2,
    "min": 2,
    "arg_max": 3,
    "arg_min": 3,
    "argmax": 3,
    "argmin": 3,
    "max_by": 3,
    "min_by": 3,
    "arg_max_nulls_last": 3,
    "arg_min_nulls_last": 3,
    "approx_top_k": 2,
    "lttb": 3,
}
_ROWS_BOUNDS = {"EXPR_PRECEDING_ROWS": -1, "CURRENT_ROW_ROWS": 0, "EXPR_FOLLOWING_ROWS": 1}


def needs_check(sql: str) -> bool:
    """Whether ``sql`` could call such an aggregate over a window."""
    folded = sql.casefold()
    return "over" in folded and any(name in folded for name in (*GROWING, *TOP_N))


def check(tree: Any) -> None:
    """Refuse a growing aggregate over a frame that is not a short ROWS frame."""
    for node in nodes(tree):
        if node.get("class") != "WINDOW":
            continue
        name = str(node.get("function_name") or "").lower()
        if (name in GROWING or _many(name, node)) and _frame_rows(node) is None:
            raise ValueTooLarge(
                f"{name}(...) OVER (...) gives every row a value built from its whole frame, "
                f"and this frame is not bounded: over a window it takes a frame of at most "
                f"{MAX_FRAME_ROWS:,} rows, written as ROWS BETWEEN n PRECEDING AND m "
                "FOLLOWING (or CURRENT ROW).",
                hint=f"Aggregate with GROUP BY ({name}(...) once a group), or bound the frame: "
                f"{name}(...) OVER (ORDER BY ... ROWS BETWEEN 6 PRECEDING AND CURRENT ROW).",
                details={"function": name, "limit_rows": MAX_FRAME_ROWS},
            )


def _many(name: str, window: dict[str, Any]) -> bool:
    """Whether a top-n aggregate is given an n that is not a literal of at most
    :data:`MAX_FRAME_ROWS` (without one it is a plain max or min)."""
    position = TOP_N.get(name)
    arguments = _arguments(window)
    if position is None or len(arguments) < position:
        return False
    return (_literal(arguments[position - 1]) or MAX_FRAME_ROWS + 1) > MAX_FRAME_ROWS


def _literal(expression: Any) -> int | None:
    """The value of a non-negative integer constant, else None."""
    if not isinstance(expression, dict) or expression.get("class") != "CONSTANT":
        return None
    literal = expression.get("literal")
    text = literal.get("text") if isinstance(literal, dict) else None
    return int(text) if isinstance(text, str) and text.isdigit() else None


def _frame_rows(window: dict[str, Any]) -> int | None:
    """Rows in ``window``'s frame when it is a ROWS frame of constant offsets within
    :data:`MAX_FRAME_ROWS`, else None."""
    start = _offset(window, "start")
    end = _offset(window, "end")
    if start is None or end is None or end < start:
        return None
    rows = end - start + 1
    return rows if rows <= MAX_FRAME_ROWS else None


def _offset(window: dict[str, Any], side: str) -> int | None:
    sign = _ROWS_BOUNDS.get(str(window.get(side)))
    if sign is None:
        return None
    if sign == 0:
        return 0
    value = _literal(window.get(f"{side}_expr"))
    return None if value is None else sign * value
