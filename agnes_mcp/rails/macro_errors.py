"""A type error DuckDB raised inside a macro's body, said of the call the query wrote.

DuckDB expands a macro before binding it, so a call with an argument of the wrong type
fails on whatever the macro's body does with it: ``repeat('x', 'y')`` (wrapped here, see
:mod:`value_guards`) was answered ``Could not choose a best candidate function for the
function call "*(DOUBLE, STRING_LITERAL)"``, ``list_prepend(1, 2)`` (one of DuckDB's own
macros) ``... 'list_concat(INTEGER[], INTEGER_LITERAL)'``: functions the caller never
wrote. Such a message is said instead of the macro the query calls, with the argument
types its function takes. Only on the error path: nothing here runs for a query that
binds.
"""

from __future__ import annotations

import functools
import itertools
import re

import duckdb

from agnes_mcp.rails import function_catalog, value_guards
from agnes_mcp.rails.engine_errors import EngineError

# DuckDB's two ways of naming the call it could not bind: the name, then its argument types.
_INNER = re.compile(
    r"""(?:given name and argument types|for the function call) ['"](?P<name>[^'"(]+)\("""
)
# A word before "(" outside strings, quoted names and comments: a call the query writes.
_TOKEN = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\w+|\S", re.DOTALL)


@functools.cache
def macro_names() -> frozenset[str]:
    """Every name a query may call that DuckDB expands as a macro: DuckDB's own macros
    and the wrappers of :mod:`value_guards`."""
    own = {e.name for e in function_catalog.read() if e.kind == "macro"}
    return frozenset(own | value_guards.GUARDED)


def _calls(sql: str) -> list[tuple[str, int]]:
    """(lower-cased name, offset) of each call ``sql`` writes, in order."""
    tokens = [(t.group(0), t.start()) for t in _TOKEN.finditer(sql)]
    found = []
    for (text, at), (after, _) in itertools.pairwise(tokens):
        name = text.strip('"').lower() if text[:1] == '"' else text.lower()
        if after == "(" and re.fullmatch(r"\w+", name):
            found.append((name, at))
    return found


@functools.cache
def signatures(name: str) -> tuple[tuple[str, ...], bool]:
    """How DuckDB's function ``name`` is called, ``repeat(VARCHAR, BIGINT)`` per overload
    (a macro's parameters have names, not types), and whether any gives types."""
    with duckdb.connect() as con:
        rows = con.execute(
            "SELECT DISTINCT parameters, parameter_types FROM duckdb_functions() "
            "WHERE function_name = $1 AND schema_name = 'main' "
            "AND function_type IN ('scalar', 'aggregate', 'macro') ORDER BY ALL",
            [name],
        ).fetchall()
    said = []
    typed = False
    for names, types in rows:
        typed = typed or any(types)
        words = [t or n for n, t in zip(names, types, strict=False)]
        said.append(f"{name}({', '.join(words)})")
    return tuple(said), typed


def inside_macro(error: EngineError, sql: str, *, placed: bool) -> EngineError | None:
    """``error`` said of the macro ``sql`` calls, when DuckDB's message names a call the
    query does not write (``placed``: DuckDB pointed at a position of the query's own,
    which an operator of the query's own has and one inside a macro's body does not)."""
    inner = _INNER.search(error.message)
    if inner is None:
        return None
    calls = _calls(sql)
    written = {name for name, _ in calls}
    name = inner["name"].strip().strip('"').lower()
    if re.fullmatch(r"\w+", name) is None:
        if placed:
            return None
    elif name in written:
        return None
    macros = [(n, at) for n, at in calls if n in macro_names()]
    if not macros:
        return None
    names = list(dict.fromkeys(n for n, _ in macros))
    if len(names) == 1:
        subject = f"{names[0]}() cannot take the arguments given"
    else:
        subject = f"One of {', '.join(n + '()' for n in names)} cannot take the arguments given"
    kind = error.message.split(":", 1)[0] if ":" in error.message else "Binder Error"
    said = EngineError(
        message=f"{kind}: {subject}: an argument has a type the function does not take. "
        "You might need to add explicit type casts.",
        candidates=[],
    )
    if len(names) == 1:
        before = sql[: macros[0][1]]
        said.line = before.count("\n") + 1
        said.column = macros[0][1] - (before.rfind("\n") + 1) + 1
    return said


def hint(sql: str) -> str | None:
    """The argument types of the one macro ``sql`` calls (after :func:`inside_macro`)."""
    names = list(dict.fromkeys(n for n, _ in _calls(sql) if n in macro_names()))
    if len(names) != 1:
        return None
    said, typed = signatures(names[0])
    if not said:
        return None
    advice = (
        "cast each argument to the type given (CAST(x AS BIGINT), or x::BIGINT)"
        if typed
        else "check each argument's type (typeof(x) shows it) against the function's docs"
    )
    return f"{names[0]} is called as {' or '.join(said)}: {advice}."
