"""Functions DuckDB calls when a bare name is no column: ``SELECT user``, ``current_role``.

SQL's value functions are written without parentheses, so DuckDB's binder reads a bare
name it cannot bind as a column as a call of the function of that name, found through
the search path like any other. Both parsers see a column there (sqlglot reads some of
these names as functions, not all), so the allow-list never saw the call: ``SELECT
user, current_role, current_schema`` answered what ``current_user()`` is refused for.

Whether such a name is a column or a call is only known when DuckDB binds it, so the
sandbox holds, where the value guards are (found before the built-ins), a macro for each
denied one that raises a refusal naming it; a table's own column of that name still
binds first and reads as the column. ``tests/test_function_allow_list.py`` checks this
list against what the installed DuckDB binds a bare name as.
"""

from __future__ import annotations

import re
import secrets

import duckdb

from agnes_mcp.rails import function_catalog
from agnes_mcp.rails.refusals import FunctionNotAllowed
from agnes_mcp.rails.value_guards import HOME
from agnes_sync.sql_text import quote_ident

# DuckDB's SQL value functions: the names its binder calls when no column has them.
VALUE_FUNCTIONS = (
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "localtime",
    "localtimestamp",
    "session_user",
    "user",
)
# A secret of this process in the stand-ins' error text: a query's own error('...') cannot
# pass for one of them.
MARKER = f"agnes_function_denied_{secrets.token_hex(8)}"


def denied() -> list[str]:
    """The value functions the allow-list denies. A name it does not list
    (``current_timestamp``) is none of DuckDB's functions: DuckDB binds it as its own
    syntax, which is allowed."""
    verdicts = [function_catalog.scalar_verdict(n) for n in VALUE_FUNCTIONS]
    return [v.name for v in verdicts if not v.allowed and v.reason != "unknown"]


def install(con: duckdb.DuckDBPyConnection) -> None:
    """A stand-in for each denied value function in ``con``'s in-memory database."""
    for name in denied():
        con.execute(f"CREATE MACRO {HOME}.{quote_ident(name)}() AS error('{MARKER}|{name}|')")


def refusal(text: str) -> FunctionNotAllowed | None:
    """The refusal for a DuckDB error a stand-in raised, else None."""
    found = re.search(rf"{MARKER}\|(\w+)\|", text)
    if found is None:
        return None
    return function_catalog.refusal(function_catalog.scalar_verdict(found[1]))
