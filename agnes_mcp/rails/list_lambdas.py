"""Lists a lambda builds an element at a time: what the lambda adds is counted as it runs.

``list_transform(range(8000), lambda x: repeat('x', 60000))`` builds a list of 8,000
strings of 60 KB: 480 MB in one value, outside ``memory_limit``, although each call the
value guards see stays under :data:`~value_guards.MAX_VALUE_BYTES` (a vector of 2,048
such rows would ask for a terabyte). A lambda's values cannot be known before DuckDB
computes them, and a wrapper of ``list_transform`` cannot see them, so the lambda itself
is given the check: a mapping's (``list_transform``, ``list_apply``, their ``array_``
spellings, ``apply``; a list comprehension is one) or a reduction's (``list_reduce``...)
lambda is rewritten on DuckDB's own parse tree to take the element's index ``i`` too and
to pass each value it makes through :data:`MACRO`, which raises ``value_too_large`` once
``i`` times the bytes the value adds to its input (the element; for a reduction, the
accumulator and the element), less :data:`ALLOWANCE_BYTES`, passes the bound. A value of
a fixed-width type is not measured. So one that adds the same large value to every
element (a 60 KB column, a ``repeat``) is refused at its second element, within the
first vector of elements DuckDB computes, before the rest is built; a list of ``n``
elements stays under ``n * ALLOWANCE_BYTES + MAX_VALUE_BYTES * (1 + ln n)`` beyond what
its elements hold.

A lambda made of its own parameters and short constants alone (``x * 2``, ``'#' ||
upper(x)``, a comprehension's filter) cannot add more than that to an element and is left
as it is: it costs nothing. Only a query whose text holds ``lambda`` or ``FOR`` is read
for lambdas; one rewritten is turned back into SQL by DuckDB (``json_deserialize_sql``)
and its answer's columns keep the names the caller's SQL gives them.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import secrets
from collections.abc import Callable
from typing import Any

import duckdb

from agnes_mcp.rails.reduce_lambdas import _ENCODERS, REDUCERS
from agnes_mcp.rails.value_guards import (
    _HELD,
    GUARDED,
    HOME,
    MARKER,
    MAX_VALUE_BYTES,
    SHORT_SEPARATOR_BYTES,
    ValueTooLarge,
    nodes,
)
from agnes_sync.sql_text import quote_literal

# What a lambda may add to each element without being counted: a short prefix, a label, the
# braces of a struct around it (as many bytes as a short separator, see value_guards).
ALLOWANCE_BYTES = SHORT_SEPARATOR_BYTES
MAPPERS = frozenset({"list_transform", "array_transform", "list_apply", "array_apply", "apply"})
# The check (a macro in the sandbox's in-memory database) and the names it gives the index
# and its own lambda's parameter: secret, so no name of the query's can shadow them.
_SUFFIX = secrets.token_hex(6)
MACRO = f"agnes_list_value_{_SUFFIX}"
INDEX = f"agnes_i_{_SUFFIX}"
_VALUE = f"agnes_v_{_SUFFIX}"
_WORDS = re.compile(r"lambda|\bfor\b")
# Types whose values are at most 16 bytes (as typeof names them): a lambda making them adds
# nothing worth counting.
_FIXED_WIDTH = (
    *("BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"),
    *("UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE"),
    *("DATE", "TIME", "TIME WITH TIME ZONE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE"),
    *("TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "INTERVAL", "UUID"),
)
# References to its parameters a lambda left unchecked may make (a comprehension's filter
# and result, a CASE's test and branch).
_PLAIN_REFERENCES = 2
# Expressions whose value is made of their children's (read through to the leaves).
_COMPOSITES = frozenset({"COMPARISON", "CONJUNCTION", "OPERATOR", "CASE", "BETWEEN", "COLLATE"})


def needs_check(sql: str) -> bool:
    """Whether ``sql`` may hold a lambda (``lambda``, or a comprehension's ``FOR``)."""
    folded = sql.casefold()
    return "lambda" in folded or ("for" in folded and _WORDS.search(folded) is not None)


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Create :data:`MACRO` ``(v, i, x, name)``: ``v``, the ``i``-th value a lambda made
    from ``x``, or the ``value_too_large`` error of ``name`` when ``i`` such values would
    pass the bound. A value of a fixed-width type (a number, a date...) adds nothing that
    counts and is not measured (``typeof`` is decided when the query is bound); another is
    computed once (the one-element list), however often the check reads it."""
    held_v, held_x = _HELD.format(_VALUE), _HELD.format("x")
    added = f"{held_v} - {held_x}"
    fixed = ", ".join(quote_literal(t) for t in _FIXED_WIDTH)
    con.execute(
        f"CREATE MACRO {HOME}.{MACRO}(v, i, x, name) AS CASE "
        f"WHEN typeof(v) IN ({fixed}) OR starts_with(typeof(v), 'DECIMAL') THEN v "
        f"ELSE list_transform([v], lambda {_VALUE}: "
        f"CASE WHEN i::DOUBLE * ({added} - {ALLOWANCE_BYTES}) > {MAX_VALUE_BYTES} "
        f"THEN error('{MARKER}|lambda|' || name || '|' || i || '|' || ({added})) "
        f"ELSE {_VALUE} END)[1] END"
    )


def refusal(text: str) -> ValueTooLarge | None:
    """The refusal for a DuckDB error :data:`MACRO` raised, else None."""
    found = re.search(rf"{MARKER}\|lambda\|(\w+)\|(\d+)\|(-?\d+)", text)
    if found is None:
        return None
    name, index, added = found[1], int(found[2]), int(found[3])
    return ValueTooLarge(
        f"{name}()'s lambda adds about {added:,} bytes to what it is given at element "
        f"{index:,} of the list: the value it builds so passes {MAX_VALUE_BYTES:,} bytes "
        f"(max_value_bytes), counting all but {ALLOWANCE_BYTES} bytes an element.",
        hint="Keep large values out of the lambda: select them once next to the list (a "
        "column), or unnest the list and build one row per element.",
        details={"function": name, "bytes": index * added, "limit_bytes": MAX_VALUE_BYTES},
    )


@functools.cache
def _template() -> str:
    """The parse tree of one call of :data:`MACRO` (JSON text), to copy for each lambda."""
    con = duckdb.connect()
    try:
        row = con.execute(
            "SELECT json_serialize_sql($1)", [f"SELECT {MACRO}(v, i, x, 'name')"]
        ).fetchone()
    finally:
        con.close()
    tree = json.loads(str(row[0])) if row else {}
    return json.dumps(tree["statements"][0]["node"]["select_list"][0])


def _column(name: str) -> dict[str, Any]:
    return {"class": "COLUMN_REF", "type": "COLUMN_REF", "alias": "", "column_names": [name]}


def _checked(value: Any, index: str, element: Any, name: str) -> dict[str, Any]:
    call: dict[str, Any] = json.loads(_template())
    arguments = call["arguments"]
    arguments[0]["expression"] = value
    arguments[1]["expression"] = _column(index)
    arguments[2]["expression"] = element
    arguments[3]["expression"]["literal"]["text"] = name
    return call


def _parameters(lhs: Any) -> list[dict[str, Any]] | None:
    """The lambda's parameters (COLUMN_REF nodes), or None for a shape not known here."""
    if not isinstance(lhs, dict):
        return None
    if lhs.get("class") == "COLUMN_REF":
        return [lhs]
    if lhs.get("class") == "FUNCTION" and lhs.get("function_name") == "row":
        found = [a.get("expression") for a in lhs.get("arguments") or []]
        if all(isinstance(p, dict) and p.get("class") == "COLUMN_REF" for p in found):
            return found
    return None


def _row(items: list[dict[str, Any]], like: dict[str, Any]) -> dict[str, Any]:
    """A ``row(...)`` call of ``items``, shaped as DuckDB serializes one (``like``)."""
    row = copy.deepcopy(like) if like.get("function_name") == "row" else None
    if row is None:
        row = json.loads(_template())
        row["function_name"] = "row"
        row["qualified_name"] = {"path": ["row"]}
    row["arguments"] = [{"name": "", "expression": copy.deepcopy(i)} for i in items]
    return row


def _adds_little(body: Any, params: set[str]) -> bool:
    """Whether a lambda's value is made of its own parameters and short constants alone,
    through functions that build nothing large (:data:`value_guards.GUARDED` do), so that
    it adds at most :data:`ALLOWANCE_BYTES` to its element, or a few times the element:
    ``x * 2``, ``'#' || upper(x)``, ``CASE WHEN x > 0 THEN x END``, a comprehension's
    ``struct_pack(filter := ..., result := ...)``. Such a lambda needs no check as it runs
    (most lambdas are such). Anything else does: another column, a nested lambda, a
    subquery, a value builder, long constants, and copies of the element: more than
    :data:`_PLAIN_REFERENCES` references to the parameters, or an encoder (``hex``,
    ``to_json``...: twice the element or more), as ``x || x || ... || x`` makes an element
    as many times larger as the SQL is long."""
    budget = ALLOWANCE_BYTES
    references = 0
    stack = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        kind = item.get("class")
        if kind == "COLUMN_REF":
            names = item.get("column_names") or [""]
            references += 1
            if str(names[0]).lower() not in params or references > _PLAIN_REFERENCES:
                return False
        elif kind == "CONSTANT":
            literal = item.get("literal")
            budget -= len(str(literal.get("text") or "")) if isinstance(literal, dict) else 0
            if budget < 0:
                return False
        elif kind == "FUNCTION":
            name = str(item.get("function_name") or "").lower()
            if name in GUARDED or any(word in name for word in _ENCODERS):
                return False
            stack.extend(item.get("arguments") or item.get("children") or [])
        elif kind == "CAST":
            stack.append(item.get("child"))
        elif kind in _COMPOSITES:
            stack.extend(v for k, v in item.items() if k not in ("class", "type", "alias"))
        elif kind is None:  # a function's argument, a CASE's branch
            stack.extend(item.values())
        else:
            return False  # a lambda, a subquery, a star, a parameter: not known to be small
    return True


def rewrite(tree: Any, to_sql: Callable[[Any], str]) -> bool:
    """Give every mapping's and reduction's lambda in ``tree`` (a ``json_serialize_sql``
    answer) the check, in place; whether any was given it. The answer's columns keep the
    names the caller's SQL gives them: an unnamed column holding a lambda is named as
    DuckDB names it (its text, which ``to_sql``, DuckDB's ``json_deserialize_sql``,
    writes) before the lambda changes."""
    named = _first_select(tree)
    before = copy.deepcopy(named.get("select_list") or []) if named is not None else []
    if not _rewrite(tree):
        return False
    after = named.get("select_list") if named is not None else None
    for position, item in enumerate(before):
        if isinstance(after, list) and not item.get("alias") and _has_lambda(item):
            after[position]["alias"] = _text(item, to_sql)
    return True


def _first_select(tree: Any) -> dict[str, Any] | None:
    """The SELECT whose select list names the answer's columns (the first of a UNION)."""
    statements = tree.get("statements") if isinstance(tree, dict) else None
    node = statements[0].get("node") if statements else None
    while isinstance(node, dict) and node.get("type") == "SET_OPERATION_NODE":
        children = node.get("children") or [node.get("left")]
        node = children[0] if children else None
    return node if isinstance(node, dict) and node.get("type") == "SELECT_NODE" else None


def _has_lambda(item: Any) -> bool:
    return any(n.get("class") == "LAMBDA" for n in nodes(item))


@functools.cache
def _one_column() -> str:
    """The parse tree of ``SELECT 1`` (JSON text), to write one expression's text with."""
    con = duckdb.connect()
    try:
        row = con.execute("SELECT json_serialize_sql('SELECT 1')").fetchone()
    finally:
        con.close()
    return str(row[0]) if row else "{}"


def _text(item: dict[str, Any], to_sql: Callable[[Any], str]) -> str:
    """``item``'s text as DuckDB writes it (the name of a column it makes)."""
    tree = json.loads(_one_column())
    tree["statements"][0]["node"]["select_list"] = [item]
    return to_sql(tree).removeprefix("SELECT ")


def _rewrite(tree: Any) -> bool:
    changed = False
    for node in nodes(tree):
        if node.get("class") != "FUNCTION":
            continue
        name = str(node.get("function_name") or "").lower()
        if name not in MAPPERS and name not in REDUCERS:
            continue
        for argument in node.get("arguments") or []:
            expression = argument.get("expression") if isinstance(argument, dict) else None
            if isinstance(expression, dict) and expression.get("class") == "LAMBDA":
                changed = _give_check(expression, name) or changed
    return changed


def _give_check(lam: dict[str, Any], name: str) -> bool:
    params = _parameters(lam.get("lhs"))
    if not params:
        return False
    inputs = 2 if name in REDUCERS else 1  # the accumulator and the element, or the element
    if len(params) > inputs + 1 or len(params) < inputs:
        return False
    refs = [_column(str(p["column_names"][-1])) for p in params]
    if _adds_little(lam.get("expr"), {str(r["column_names"][0]).lower() for r in refs}):
        return False
    if len(params) == inputs:  # no index yet: add one
        refs.append(_column(INDEX))
        lhs = lam["lhs"] if lam["lhs"].get("class") == "FUNCTION" else {}
        lam["lhs"] = _row(refs, lhs)
    index = str(refs[inputs]["column_names"][-1])
    element = refs[0] if inputs == 1 else _row(refs[:2], lam["lhs"])
    lam["expr"] = _checked(lam.get("expr"), index, element, name)
    return True
