"""Cross-checking sqlglot against DuckDB's own parser (``json_serialize_sql``).

Two parsers must agree on what a query touches: the same number of statements (one),
a SELECT, and the same table names (CTE references included, as both list them
before binding). A disagreement means a construct one of them reads differently,
which is exactly where a bypass would hide, so the query is refused.
"""

from __future__ import annotations

import functools
import json
import threading
from collections import Counter
from typing import Any

import duckdb

from agnes_mcp.rails.engine_errors import EngineError, read_duckdb_error
from agnes_mcp.rails.refusals import (
    FunctionNotAllowed,
    MultipleStatements,
    QueryRefused,
    ReadOnly,
    SqlParseError,
    SqlTooLarge,
)

ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})


class ParserDisagreement(QueryRefused):
    code = "parser_disagreement"
    default_hint = "Write the query more plainly (named tables, no unusual syntax)."


_local = threading.local()


def _connection() -> duckdb.DuckDBPyConnection:
    """A parse-only connection per thread (it never reads data)."""
    con = getattr(_local, "con", None)
    if con is None:
        con = _local.con = duckdb.connect()
    return con


def statement_kinds(sql: str) -> list[str] | None:
    """The statement types DuckDB's parser reads in ``sql`` (None if it cannot parse)."""
    try:
        statements = _connection().extract_statements(sql)
    except duckdb.Error:
        return None
    return [s.type.name for s in statements]


def duckdb_syntax_error(sql: str) -> EngineError | None:
    """What DuckDB's own parser says is wrong with ``sql`` (None when it parses)."""
    try:
        _connection().extract_statements(sql)
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


def duckdb_references(sql: str) -> tuple[list[str], list[str]]:
    """(table names, table function names) as DuckDB's parser sees ``sql``."""
    row = _connection().execute("SELECT json_serialize_sql($1)", [sql]).fetchone()
    try:
        tree: dict[str, Any] = json.loads(row[0]) if row else {"error": True, "error_message": "?"}
    except RecursionError:
        raise SqlTooLarge("The SQL is nested too deeply to check.") from None
    if tree.get("error"):
        message = str(tree.get("error_message", "")).strip()
        if "Only SELECT statements" in message:
            raise ReadOnly("DuckDB reads this as a statement other than SELECT.")
        raise SqlParseError(
            f"DuckDB cannot parse the SQL: {message.splitlines()[0] if message else 'no reason'}",
            details={"line": None, "column": None},
        )
    statements = tree.get("statements") or []
    if not isinstance(statements, list) or len(statements) != 1:
        raise MultipleStatements(f"DuckDB reads {len(statements)} statements; send one.")
    tables: list[str] = []
    functions: list[str] = []
    _walk(statements[0], tables, functions)
    return tables, functions


def _walk(root: Any, tables: list[str], functions: list[str]) -> None:
    """Collect table and table-function names (iteratively: the tree can be very deep)."""
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            kind = node.get("type")
            if kind == "BASE_TABLE" and node.get("table_name"):
                tables.append(str(node["table_name"]).lower())
            elif kind == "TABLE_FUNCTION":
                function = node.get("function") or {}
                functions.append(str(function.get("function_name", "?")).lower())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def cross_check(sql: str, sqlglot_table_names: list[str]) -> None:
    """Refuse unless DuckDB sees one SELECT with the same table names as sqlglot."""
    tables, functions = duckdb_references(sql)
    outside = sorted(set(functions) - ALLOWED_TABLE_FUNCTIONS)
    if outside:
        raise FunctionNotAllowed(f"The table function {outside[0]}() is not allowed.")
    if Counter(tables) != Counter(sqlglot_table_names):
        raise ParserDisagreement(
            "The query's table references read differently to the two SQL parsers.",
            details={"duckdb": sorted(tables), "sqlglot": sorted(sqlglot_table_names)},
        )
