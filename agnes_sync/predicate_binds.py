"""Whether DuckDB can apply a predicate to a table's columns, checked on no data.

A predicate that parses may still not bind: a text column compared with numbers, a
function called with the wrong types or arity (``date_sub(current_date(), INTERVAL 30
DAY)`` is another engine's spelling). Bound against empty, typed columns, DuckDB says so
in microseconds, before a sync or a snapshot runs on the real rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import duckdb

from agnes_sync.connector import Column
from agnes_sync.sql_text import quote_ident


def bind_problem(
    predicate: str,
    columns: Sequence[Column],
    connect: Callable[[], duckdb.DuckDBPyConnection] = duckdb.connect,
) -> str | None:
    """DuckDB's reason ``predicate`` cannot apply to ``columns`` (its first line), or
    None when it binds. Columns whose types DuckDB does not read (another engine's names)
    leave the check undone (None).

    Binding is not harmless: DuckDB folds a call on constants while it binds (two nested
    ``replace`` of 1,000-character literals built 200 MB here, three would build a
    terabyte). A predicate from someone who is not an admin (a snapshot's ``where``) is
    bound on ``connect``'s connection, which must be locked as a query's is: the value
    guards wrap the functions that build large values, and their calls are not folded."""
    if not predicate or not columns:
        return None
    typed = ", ".join(f"CAST(NULL AS {c.type}) AS {quote_ident(c.name)}" for c in columns)
    con = connect()
    try:
        try:
            con.execute(f"SELECT {typed} LIMIT 0")
        except duckdb.Error:
            return None
        try:
            con.execute(f"SELECT * FROM (SELECT {typed}) AS src WHERE {predicate} LIMIT 0")
        except duckdb.Error as exc:
            return str(exc).splitlines()[0]
        return None
    finally:
        con.close()
