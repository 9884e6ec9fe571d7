"""Reductions that double their accumulator: ``list_reduce(l, lambda a, b: a || a)``.

``list_reduce`` feeds each step's value to the next, so a lambda whose value holds the
accumulator twice doubles it at every element: 31 elements make a 1 GB string, 40 make
512 GB, built by one call inside a vector, outside ``memory_limit`` (the value guards
bound what one function builds from its arguments, not what a lambda's steps compound).
A lambda whose value holds the accumulator at most once grows by what each step adds.

How often a lambda's value holds the accumulator is counted on DuckDB's parse tree: a
reference counts once; a condition (a comparison, AND/OR, IS NULL...) holds none of it;
arithmetic holds none (a number is as wide whatever it was made of); of alternatives
(CASE branches, ``if``, ``coalesce``, ``greatest``...) only the one taken counts, so the
largest; anything else holds all its arguments' (``a || a``, ``concat(a, a)``,
``printf('%s%s', a, a)``: two). Some copy what they hold: ``concat_ws``'s separator
stands between every two others, a format may number an argument twice ('{0}{0}'), a
nested lambda runs once an element, an encoder (``hex(a)``) doubles it or more; each
counts twice. So ``CASE WHEN a > b THEN a ELSE b END`` (a maximum) passes, and a
doubling is refused before it runs.
"""

from __future__ import annotations

import re
from typing import Any

from agnes_mcp.rails.value_guards import ValueTooLarge, nodes

REDUCERS = frozenset({"list_reduce", "array_reduce", "reduce"})
# Expressions whose value is a truth value: they hold none of the accumulator's content.
_CONDITIONS = frozenset({"COMPARISON", "CONJUNCTION", "BETWEEN"})
_TRUTH_OPERATORS = frozenset(
    {"OPERATOR_NOT", "OPERATOR_IS_NULL", "OPERATOR_IS_NOT_NULL", "COMPARE_IN", "COMPARE_NOT_IN"}
)
# Arithmetic: a number (or a date, an interval) of fixed width, whatever it was made of.
_ARITHMETIC = frozenset({"+", "-", "*", "/", "//", "%", "**", "^"})
# Functions whose value is one of their arguments (from ``first``: the rest for ``if``).
_FORMATTERS = frozenset({"format", "printf"})
# Functions whose value is larger than their input (hex: twice, bin: eight times, JSON and
# URL escapes up to six), found by a word in the name as result_meter finds them.
_ENCODERS = ("hex", "bin", "base64", "encode", "json", "escape", "quote")
_ALTERNATIVES = {"if": 1, "coalesce": 0, "ifnull": 0, "nullif": 0, "greatest": 0, "least": 0}


def _reuses_arguments(arguments: list[Any]) -> bool:
    """Whether a format (the first argument) may name an argument more than once: it
    numbers them ('{0}', '%1$s'), or is no literal."""
    first = arguments[0] if arguments else None
    literal = first.get("literal") if isinstance(first, dict) else None
    text = literal.get("text") if isinstance(literal, dict) else None
    return not isinstance(text, str) or bool(re.search(r"\{\s*\d|%\d+\$", text))


def needs_check(sql: str) -> bool:
    """Whether ``sql`` may call a reduction (its name is a word in it)."""
    return "reduce" in sql.casefold()


def check(tree: Any) -> None:
    """Refuse a reduction whose lambda's value holds its accumulator more than once."""
    for node in nodes(tree):
        if node.get("class") != "FUNCTION":
            continue
        name = str(node.get("function_name") or "").lower()
        if name not in REDUCERS:
            continue
        for argument in node.get("arguments") or []:
            expression = argument.get("expression") if isinstance(argument, dict) else None
            if not isinstance(expression, dict) or expression.get("class") != "LAMBDA":
                continue
            accumulator = _first_parameter(expression.get("lhs"))
            if accumulator is not None and _held(expression.get("expr"), accumulator) > 1:
                raise ValueTooLarge(
                    f"{name}() with a lambda whose value holds its accumulator "
                    f"'{accumulator}' more than once doubles it at every element: a list "
                    "of a few dozen elements would build a value of gigabytes.",
                    hint="Use the accumulator once in the lambda's value (a || b, not a || a); "
                    "to join a list's elements, use array_to_string(list, separator).",
                    details={"function": name},
                )


def _first_parameter(lhs: Any) -> str | None:
    """The accumulator's name: the first of the lambda's parameters."""
    if not isinstance(lhs, dict):
        return None
    if lhs.get("class") == "COLUMN_REF":
        names = lhs.get("column_names") or []
        return str(names[-1]).lower() if names else None
    arguments = lhs.get("arguments") or lhs.get("children") or []
    first = arguments[0] if arguments else None
    if isinstance(first, dict):
        return _first_parameter(first.get("expression", first))
    return None


def _held(expression: Any, accumulator: str) -> int:
    """How many copies of the accumulator ``expression``'s value may hold."""
    if isinstance(expression, list):
        return sum(_held(item, accumulator) for item in expression)
    if not isinstance(expression, dict):
        return 0
    kind = expression.get("class")
    if kind == "COLUMN_REF":
        names = [str(n).lower() for n in expression.get("column_names") or []]
        return 1 if names == [accumulator] else 0
    if kind in _CONDITIONS or expression.get("type") in _TRUTH_OPERATORS:
        return 0
    if kind == "CASE":
        branches = [check.get("then_expr") for check in expression.get("case_checks") or []]
        branches.append(expression.get("else_expr"))
        return max(_held(branch, accumulator) for branch in branches)
    if kind == "FUNCTION":
        name = str(expression.get("function_name") or "").lower()
        arguments = [
            a.get("expression", a) if isinstance(a, dict) else a
            for a in expression.get("arguments") or expression.get("children") or []
        ]
        if name in _ARITHMETIC:
            return 0
        if any(word in name for word in _ENCODERS):  # hex(a): a value twice a's size
            return 2 * sum(_held(a, accumulator) for a in arguments)
        if name in _ALTERNATIVES:
            values = arguments[_ALTERNATIVES[name] :]
            return max((_held(v, accumulator) for v in values), default=0)
        if name == "concat_ws" and arguments:  # the separator, between every two others
            return _held(arguments[0], accumulator) * max(1, len(arguments) - 2) + sum(
                _held(a, accumulator) for a in arguments[1:]
            )
        if name in _FORMATTERS and _reuses_arguments(arguments):  # '{0}{0}', '%1$s%1$s'
            return 2 * sum(_held(a, accumulator) for a in arguments[1:])
        return sum(_held(a, accumulator) for a in arguments)
    if kind == "LAMBDA":  # a list function calls it once an element: as many copies
        return 2 * _held(expression.get("expr"), accumulator)
    return sum(
        _held(value, accumulator)
        for key, value in expression.items()
        if key not in ("class", "type", "alias")
    )
