"""Cross-checking sqlglot against DuckDB's own parser (``json_serialize_sql``).

Two parsers must agree on what a query touches: the same number of statements (one),
a SELECT, and the same table names (CTE references included, as both list them
before binding). A disagreement means a construct one of them reads differently,
which is exactly where a bypass would hide, so the query is refused.

DuckDB's reading also names every function the query calls as DuckDB will bind it
(operators, ``LIKE`` as ``~~``, ``count(*)`` as ``count_star``, method calls such as
``x.f()``, calls inside lambdas, named windows and ``PIVOT``), before macros expand:
each must be on the allow-list (``function_catalog``), whatever sqlglot made of it.
"""

from __future__ import annotations

import functools
import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import duckdb

from agnes_mcp.rails import function_catalog
from agnes_mcp.rails.engine_errors import EngineError, read_duckdb_error, without_settings_advice
from agnes_mcp.rails.refusals import (
    FunctionNotAllowed,
    MultipleStatements,
    QueryRefused,
    ReadOnly,
    SqlParseError,
    SqlTooLarge,
    StatementNotAllowed,
)


class ParserDisagreement(QueryRefused):
    code = "parser_disagreement"
    default_hint = "Write the query more plainly (named tables, no unusual syntax)."


# Parse-only connections not in use now, lent one per call (see _Parser).
_idle: list[duckdb.DuckDBPyConnection] = []
_idle_lock = threading.Lock()


def _new_connection() -> duckdb.DuckDBPyConnection:
    """A parse-only connection. It never reads data, so one thread (DuckDB's scheduling
    for more costs ~50 us a call) and no optimizer: its only query is
    ``SELECT json_serialize_sql($1)``, whose answer the optimizer cannot change, and its
    passes cost ~65 us of that query's ~170."""
    con = duckdb.connect(config={"threads": 1})
    con.execute("PRAGMA disable_optimizer")
    return con


class _Parser:
    """``with _Parser() as con``: a parse-only connection lent for one call, given back
    after it. Kept here, not per thread: a notebook's or ``agnes query``'s query runs on a
    thread of its own (so Ctrl-C stops it), and a connection kept per thread was made again
    for every query and destroyed as its thread ended, which could be while Python shut
    down (a script's last query): the destructor, waiting for the interpreter's lock
    there, was ended with the thread, and the process aborted (exit code 134)."""

    __slots__ = ("con",)

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        with _idle_lock:
            con = _idle.pop() if _idle else None
        self.con = con if con is not None else _new_connection()
        return self.con

    def __exit__(self, *exc: object) -> None:
        with _idle_lock:
            _idle.append(self.con)


def statement_kinds(sql: str) -> list[str] | None:
    """The statement types DuckDB's parser reads in ``sql`` (None if it cannot parse)."""
    try:
        with _Parser() as con:
            statements = con.extract_statements(sql)
    except duckdb.Error:
        return None
    return [s.type.name for s in statements]


def duckdb_syntax_error(sql: str) -> EngineError | None:
    """What DuckDB's own parser says is wrong with ``sql`` (None when it parses)."""
    try:
        with _Parser() as con:
            con.extract_statements(sql)
    except duckdb.ParserException as exc:
        return read_duckdb_error(str(exc))
    except duckdb.Error:
        return None
    return None


@functools.cache
def sql_keywords() -> tuple[str, ...]:
    """DuckDB's reserved and unreserved keywords, upper case."""
    rows = duckdb.connect().execute("SELECT keyword_name FROM duckdb_keywords()").fetchall()
    return tuple(sorted({str(r[0]).upper() for r in rows}))


@dataclass
class References:
    """What DuckDB's parser reads in a query: table names, table functions, and every other
    function call (scalar, aggregate, window, macro; operators too) as DuckDB names it."""

    tables: list[str] = field(default_factory=list)
    table_functions: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    refusals: list[QueryRefused] = field(default_factory=list)  # found while walking


def duckdb_references(sql: str) -> tuple[list[str], list[str]]:
    """(table names, table function names) as DuckDB's parser sees ``sql``."""
    found = read_references(sql)
    return found.tables, found.table_functions


def read_references(sql: str) -> References:
    """Everything DuckDB's parser names in ``sql`` (one SELECT, else a refusal)."""
    with _Parser() as con:
        row = con.execute("SELECT json_serialize_sql($1)", [sql]).fetchone()
    try:
        tree: dict[str, Any] = json.loads(row[0]) if row else {"error": True, "error_message": "?"}
    except RecursionError:
        raise SqlTooLarge("The SQL is nested too deeply to check.") from None
    if tree.get("error"):
        message = str(tree.get("error_message", "")).strip()
        if "Only SELECT statements" in message:
            raise ReadOnly("DuckDB reads this as a statement other than SELECT.")
        if "max_expression_depth" in message:
            raise SqlTooLarge("The SQL nests expressions deeper than DuckDB reads (1,000 levels).")
        first = without_settings_advice(message.splitlines()[0]) if message else "no reason"
        raise SqlParseError(
            f"DuckDB cannot parse the SQL: {first}",
            hint="Fix the SQL; only one SELECT is accepted.",
            details={"line": None, "column": None},
        )
    statements = tree.get("statements") or []
    if not isinstance(statements, list) or len(statements) != 1:
        raise MultipleStatements(f"DuckDB reads {len(statements)} statements; send one.")
    found = References()
    _walk(statements[0], found)
    return found


def _walk(root: Any, found: References) -> None:
    """Collect table names, table functions and function calls (iteratively: the tree can
    be very deep). A table function's own node is not a call; its arguments are walked."""
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            kind = node.get("type")
            if kind == "BASE_TABLE" and node.get("table_name"):
                found.tables.append(str(node["table_name"]).lower())
            elif kind == "SHOW_REF":  # (SHOW TABLES) as a subquery: sqlglot reads a table
                said = _SHOWN.get(str(node.get("show_type")), "SHOW")
                found.refusals.append(StatementNotAllowed(f"The query contains {said}."))
            elif kind == "TABLE_FUNCTION":
                function = node.get("function") or {}
                found.table_functions.append(str(function.get("function_name", "?")).lower())
                stack.extend(v for k, v in node.items() if k != "function")
                if isinstance(function, dict):
                    stack.extend(function.values())
                continue
            elif node.get("class") in ("FUNCTION", "WINDOW") and "function_name" in node:
                _call(node, found)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


# DuckDB's show_type of a SHOW_REF, as the statement is written
_SHOWN = {"DESCRIBE": "DESCRIBE", "SUMMARY": "SUMMARIZE", "SHOW": "SHOW", "SHOW_SPECIAL": "SHOW"}


def _call(node: dict[str, Any], found: References) -> None:
    name = str(node.get("function_name", "?")).lower()
    found.functions.append(name)
    if node.get("export_state"):
        found.refusals.append(
            FunctionNotAllowed(
                f"{name}(...) EXPORT_STATE exports an aggregate's internal state.",
                hint="Use the aggregate's result; aggregate states are internal.",
            )
        )
    if name in function_catalog.LIST_AGGREGATES:
        qualified = bool(node.get("schema") or node.get("catalog"))
        args = [_argument(a) for a in node.get("arguments") or node.get("children") or []]
        refused = function_catalog.named_aggregate_refusal(name, args, qualified=qualified)
        if refused is not None:
            found.refusals.append(refused)


def _argument(argument: Any) -> function_catalog.Argument:
    expression = argument.get("expression", argument) if isinstance(argument, dict) else {}
    if not isinstance(expression, dict):
        return function_catalog.Argument(None, False)
    if expression.get("class") == "CONSTANT":
        literal = expression.get("literal") or {}
        text = literal.get("text") if literal.get("kind") == "STRING" else None
        return function_catalog.Argument(None if text is None else str(text), True)
    return function_catalog.Argument(None, expression.get("class") == "COLUMN_REF")


@functools.cache
def volatile_functions() -> frozenset[str]:
    """Functions DuckDB itself marks VOLATILE (``random``, ``uuid``, ``setseed``...): a
    query calling one answers differently each time it runs."""
    rows = (
        duckdb.connect()
        .execute(
            "SELECT DISTINCT lower(function_name) FROM duckdb_functions() "
            "WHERE stability = 'VOLATILE'"
        )
        .fetchall()
    )
    return frozenset(str(r[0]) for r in rows) | {"list_shuffle", "array_shuffle"}


def repeatable(sql: str) -> bool:
    """Whether running ``sql`` again gives the same rows (as far as DuckDB can tell): no
    sample (TABLESAMPLE, USING SAMPLE) and no volatile function."""
    try:
        with _Parser() as con:
            row = con.execute("SELECT json_serialize_sql($1)", [sql]).fetchall()
    except duckdb.Error:
        return False
    try:
        tree = json.loads(str(row[0][0])) if row else None
    except (ValueError, RecursionError):
        return False
    found = References()
    _walk(tree, found)
    return not _sampled(tree) and not any(f in volatile_functions() for f in found.functions)


def _sampled(root: Any) -> bool:
    """Whether any node of DuckDB's parse tree draws a sample."""
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("sample"):
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def cross_check(sql: str, sqlglot_table_names: list[str]) -> None:
    """Refuse unless DuckDB sees one SELECT with the same table names as sqlglot, and
    every function it reads is on the allow-list (names as DuckDB spells them)."""
    found = read_references(sql)
    for name in found.table_functions:
        verdict = function_catalog.table_verdict(name)
        if not verdict.allowed:
            raise function_catalog.refusal(verdict, table=True)
    unknown: list[function_catalog.Verdict] = []
    for name in dict.fromkeys(found.functions):
        verdict = function_catalog.scalar_verdict(name)
        if verdict.reason == "unknown":
            unknown.append(verdict)
        elif not verdict.allowed:
            raise function_catalog.refusal(verdict)
    if found.refusals:
        raise found.refusals[0]
    if Counter(found.tables) != Counter(sqlglot_table_names):
        raise ParserDisagreement(
            "The query's table references read differently to the two SQL parsers.",
            details={"duckdb": sorted(found.tables), "sqlglot": sorted(sqlglot_table_names)},
        )
    if unknown:  # last: a remote query may be another warehouse's SQL (tried in its dialect)
        raise function_catalog.refusal(unknown[0])
