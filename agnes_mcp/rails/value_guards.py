"""Values a query may build: bounded before DuckDB allocates them.

DuckDB's ``memory_limit`` bounds its buffers (hash tables, sorts, aggregates), not the
strings and lists a scalar function builds inside a vector: ``repeat('x', 1000000000)``
allocates its gigabyte untracked, and a vector holds 2,048 rows. So the functions whose
output is not bounded by their input — a count, width or size argument, or a replacement
that grows — are wrapped in the sandbox: a macro of the same name (found before the
built-in, which lives in ``system.main``) computes the size the call would build and
raises ``value_too_large`` above :data:`MAX_VALUE_BYTES`, else calls the built-in. The
check runs on the actual values, so ``repeat(name, 3)`` on a column works and
``repeat('x', 1000000000 + i)`` is refused before anything is allocated.

``printf``/``format`` take any number of arguments (a macro cannot wrap them): their
format string must be a literal whose widths and precisions stay under the bound. And a
call qualified with the built-ins' own catalog or schema (``system.main.repeat(...)``)
would skip the wrappers, so it is refused; both are checked on DuckDB's own parse tree.

One value is at most 64 KiB here, so one vector of them is at most 128 MiB. A function
whose working memory grows faster than its input is wrapped the same way, against a bound
of its own (:data:`MAX_WORK_BYTES`): ``damerau_levenshtein`` fills a matrix of
``(len(s) + 2) * (len(t) + 2)`` 8-byte cells that DuckDB does not count either, 34 GB
for two 64 KiB strings. What this does not bound: growth by composition of functions
that are not amplifiers on their own (``s || s`` repeated through nested subqueries);
see docs/query.md.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

import duckdb

from agnes_mcp.rails.function_catalog import LIST_AGGREGATES
from agnes_mcp.rails.refusals import FunctionNotAllowed, QueryRefused, SqlTooLarge

MAX_VALUE_BYTES = 64 * 1024
# The wrappers' error text carries a secret of this process, so a query cannot forge the
# refusal with error('agnes_value_too_large|...') of its own.
MARKER = f"agnes_value_too_large_{secrets.token_hex(8)}"
# Working memory one call may take outside DuckDB's memory_limit (it is freed when the call
# ends, so a query holds at most one per thread): damerau_levenshtein on two strings of
# about 1,400 bytes.
MAX_WORK_BYTES = 16 * 1024 * 1024
HOME = "memory.main"  # where the wrappers live: the in-memory database of duckdb.connect()
# A separator repeated between a list's elements adds no more than the list itself up to
# this length; a longer one is counted (array_to_string) or refused (list_aggr string_agg).
SHORT_SEPARATOR_BYTES = 16
# The aggregates list_aggr(l, name, sep) may name that repeat a separator: what
# array_to_string(l, sep) itself runs, without its wrapper's count.
_STRING_AGGREGATES = frozenset({"string_agg", "listagg", "group_concat"})


class ValueTooLarge(QueryRefused):
    code = "value_too_large"
    status = 400
    default_hint = (
        "Build smaller values: one value (a string or list a function builds) may hold "
        f"at most {MAX_VALUE_BYTES:,} bytes. For a series of numbers or dates, use the "
        "table function (SELECT * FROM range(...)) instead of a list."
    )


# What a value (a list, a string, a struct...) holds in variable-width content, at most:
# the length of its text, which writes every string and blob it holds out whole.
_HELD = "coalesce(strlen(CAST({} AS VARCHAR)), 0)"
# name -> overloads of (parameters, bytes the call would build, the argument that carries
# the check). For replace/regexp_replace the size is what the replacements may add to
# their input (a shrinking or same-size replacement adds nothing).
_SIZE: dict[str, list[tuple[str, str, str]]] = {
    "repeat": [
        ("s VARCHAR, n BIGINT", "strlen(s)::DOUBLE * n", "n"),
        ("s BLOB, n BIGINT", "octet_length(s)::DOUBLE * n", "n"),
        # lists: 16 bytes an element and what each holds (a list of one 60 KB string
        # repeated 4,000 times is 240 MB, not 64 KB), as long as the list's text
        ("s, n", f"(len(s)::DOUBLE * 16 + {_HELD.format('s')}) * n", "n"),
    ],
    "lpad": [("s, n, f", "n::DOUBLE * 4", "n")],  # n characters of up to 4 bytes
    "rpad": [("s, n, f", "n::DOUBLE * 4", "n")],
    "range": [
        ("n", "n::DOUBLE * 8", "n"),
        ("a, b", "(b::DOUBLE - a::DOUBLE) * 8", "b"),
        ("a BIGINT, b BIGINT, c BIGINT", "abs((b::DOUBLE - a::DOUBLE) / nullif(c, 0)) * 8", "c"),
        (
            "a TIMESTAMP, b TIMESTAMP, c INTERVAL",
            "abs((epoch(b) - epoch(a)) / nullif(epoch(c), 0)) * 8",
            "c",
        ),
        (
            "a TIMESTAMPTZ, b TIMESTAMPTZ, c INTERVAL",
            "abs((epoch(b) - epoch(a)) / nullif(epoch(c), 0)) * 8",
            "c",
        ),
    ],
    # the elements added are NULLs, or copies of v: 16 bytes each and what v holds
    "list_resize": [
        ("l, n", "n::DOUBLE * 16", "n"),
        ("l, n, v", f"n::DOUBLE * (16 + {_HELD.format('v')})", "n"),
    ],
    "bitstring": [("s, n", "n::DOUBLE", "n")],
    "equi_width_bins": [("a, b, n, r", "n::DOUBLE * 8", "n")],
    "replace": [
        (
            "s, a, b",
            "floor(strlen(s)::DOUBLE / greatest(strlen(a), 1)) "
            "* greatest(strlen(b) - strlen(a), 0)",
            "b",
        ),
    ],
    "regexp_replace": [
        # one match: the replacement, plus the match again per back-reference (\0..\9)
        (
            "s, p, r",
            "strlen(r)::DOUBLE * (CASE WHEN contains(r, '\\') THEN strlen(s) + 1 ELSE 1 END)",
            "r",
        ),
        (
            "s, p, r, o",
            "strlen(r)::DOUBLE * (CASE WHEN contains(o, 'g') THEN strlen(s) + 1 ELSE 1 END) "
            "* (CASE WHEN contains(r, '\\') THEN 2 + (NOT contains(o, 'g'))::INT * strlen(s) "
            "ELSE 1 END)",
            "r",
        ),
    ],
    # a long separator repeated between many elements (short ones add less than the list);
    # the check rides on the list: the separator must stay a constant for string_agg
    "array_to_string": [
        (
            "l, sep",
            f"CASE WHEN strlen(sep) > {SHORT_SEPARATOR_BYTES} "
            "THEN len(l)::DOUBLE * strlen(sep) ELSE 0 END",
            "l",
        ),
    ],
}
# name -> overloads as above, for the working memory a call takes (MAX_WORK_BYTES): the
# optimal-string-alignment matrix, one 8-byte cell per pair of bytes and a border.
_WORK: dict[str, list[tuple[str, str, str]]] = {
    "damerau_levenshtein": [("s, t", "(strlen(s)::DOUBLE + 2) * (strlen(t)::DOUBLE + 2) * 8", "t")],
}
_ALIASES = {"generate_series": "range", "array_resize": "list_resize"}
GUARDED = frozenset({*_SIZE, *_WORK, *_ALIASES})


def _limit(name: str) -> int:
    """The bound a wrapper of ``name`` checks its call against."""
    return MAX_WORK_BYTES if name in _WORK else MAX_VALUE_BYTES


def _macro(name: str, builtin: str) -> str:
    """``name`` over the built-in, its checked argument replaced by a CASE that raises for
    an oversized call. The check is an argument, not a CASE around the call: DuckDB folds
    constant sub-expressions bottom up, and would build ``repeat('x', 1e9)`` in an ELSE
    branch while folding, before any CASE above it is decided; ``error()`` is never folded,
    so a call whose argument holds it is not either."""
    bodies = []
    for params, size, checked in _SIZE.get(builtin) or _WORK[builtin]:
        names = [p.split()[0] for p in params.split(", ")]
        guard = (
            f"CASE WHEN ({size}) > {_limit(builtin)} "
            f"THEN error('{MARKER}|{name}|' || printf('%.0f', ({size}))) ELSE {checked} END"
        )
        args = ", ".join(guard if n == checked else n for n in names)
        bodies.append(f"({params}) AS system.main.{name}({args})")
    return f"CREATE MACRO {HOME}.{name}" + ", ".join(bodies)


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Create the wrappers in ``con``'s in-memory database (:data:`HOME`). A query finds
    them before the built-ins while :data:`HOME` is on its search path: the default for a
    connection whose default database is the in-memory one; a connection switched to
    another database (``USE``) puts :data:`HOME` after it (:func:`search_path`)."""
    for name in sorted(GUARDED):
        con.execute(_macro(name, _ALIASES.get(name, name)))


def search_path(database: str) -> str:
    """The search path of a connection that reads ``database`` (a quoted identifier) by
    default, with the wrappers still found before the built-ins."""
    return f"{database}.main,{HOME}"


def refusal(text: str) -> ValueTooLarge | None:
    """The refusal for a DuckDB error a wrapper raised, else None."""
    found = re.search(rf"{MARKER}\|(\w+)\|(\d+)", text)
    if found is None:
        return None
    name, size = found[1], int(found[2])
    if name in _WORK:
        return ValueTooLarge(
            f"{name}() would need about {size:,} bytes of working memory; one call may use "
            f"at most {MAX_WORK_BYTES:,} (max_work_bytes).",
            hint=f"Compare shorter strings with {name}() (up to about 1,400 bytes each), or "
            "use levenshtein(), which needs little memory.",
            details={"function": name, "bytes": size, "limit_bytes": MAX_WORK_BYTES},
        )
    return ValueTooLarge(
        f"{name}() would build a value of about {size:,} bytes; one value may hold at most "
        f"{MAX_VALUE_BYTES:,} (max_value_bytes).",
        details={"function": name, "bytes": size, "limit_bytes": MAX_VALUE_BYTES},
    )


# --- checks on DuckDB's own parse tree -------------------------------------------------------

# Where DuckDB keeps its built-ins: a call qualified with these reaches them directly.
_BUILTIN_HOMES = frozenset({"system", "pg_catalog", "information_schema"})
_FORMATTERS = frozenset({"printf", "format"})
# printf: %[flags][width][.precision]; fmt: {[arg]:[fill][align][sign][#][0][width][.prec]}
_PRINTF_SPEC = re.compile(r"%[-+ #0]*(\*|\d*)(?:\.(\*|\d*))?")
_FMT_SPEC = re.compile(r"\{[^{}]*:([^{}]*)\}")
_NUMBER = re.compile(r"\d+")


# A call check_functions refuses must spell one of these (identifiers have no escapes in
# DuckDB but U&"..." unicode ones): SQL holding none needs no parse tree (~0.3 ms saved).
# An ARRAY type is spelt with "[" or ARRAY (what check_types counts).
_TRIGGERS = (*_BUILTIN_HOMES, *_FORMATTERS, "u&", "[", "array", "aggr")

# Elements the types a query names may declare, all told. A constant of a fixed-size
# ARRAY type (NULL::BIGINT[10000][10000]) is built when the query is bound as one DuckDB
# Value per element, ~250 bytes each, outside memory_limit: 25 GB there, and a list of
# such NULLs adds them up. DuckDB's own bound for one ARRAY (~25 MB of Values).
MAX_TYPE_ELEMENTS = 100_000


def needs_check(sql: str) -> bool:
    """Whether ``sql`` could hold a call :func:`check_functions` or a type
    :func:`check_types` refuses."""
    folded = sql.casefold()
    return any(word in folded for word in _TRIGGERS)


def nodes(tree: Any) -> Iterator[dict[str, Any]]:
    """Every object in a ``json_serialize_sql`` tree."""
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _arguments(function: dict[str, Any]) -> list[dict[str, Any]]:
    found = function.get("arguments")
    if isinstance(found, list):
        return [a.get("expression", a) for a in found if isinstance(a, dict)]
    children = function.get("children")
    return [c for c in children if isinstance(c, dict)] if isinstance(children, list) else []


def check_functions(tree: Any) -> None:
    """Refuse calls that would skip the wrappers, and formats that build huge values."""
    for node in nodes(tree):
        if node.get("class") != "FUNCTION":
            continue
        name = str(node.get("function_name") or "").lower()
        homes = {str(node.get("catalog") or "").lower(), str(node.get("schema") or "").lower()}
        if homes & _BUILTIN_HOMES:
            raise FunctionNotAllowed(
                f"Functions are called by their name alone, not through "
                f"{'.'.join(p for p in (node.get('catalog'), node.get('schema')) if p)}.",
                hint=f"Write {name}(...).",
            )
        if name in _FORMATTERS:
            # col.printf(...) is printf(col, ...): its format would not be a literal
            method = bool(node.get("schema") or node.get("catalog"))
            _check_format(name, None if method else _arguments(node))
        if name in LIST_AGGREGATES:
            _check_separator(name, _arguments(node))


def _string_literal(argument: dict[str, Any]) -> str | None:
    literal = argument.get("literal") if argument.get("class") == "CONSTANT" else None
    if isinstance(literal, dict) and literal.get("kind") == "STRING":
        text = literal.get("text")
        return text if isinstance(text, str) else None
    return None


def _check_separator(name: str, arguments: list[dict[str, Any]]) -> None:
    """``list_aggr(l, 'string_agg', sep)`` is what ``array_to_string(l, sep)`` runs, but
    past its wrapper: 8,000 elements and a 90 KB separator make one 720 MB value, and a
    vector of such rows passes any memory. Its separator must be a literal of at most
    :data:`SHORT_SEPARATOR_BYTES`; ``array_to_string`` counts a longer one on the values.
    The aggregate is named by the first or second argument (a qualified call, or not);
    what follows it is the separator."""
    for position, argument in enumerate(arguments[:2]):
        named = _string_literal(argument)
        if named is None or named.lower() not in _STRING_AGGREGATES:
            continue
        for separator in arguments[position + 1 :]:
            text = _string_literal(separator)
            if text is None or len(text.encode()) > SHORT_SEPARATOR_BYTES:
                raise ValueTooLarge(
                    f"{name}() with '{named}' repeats its separator between every two "
                    f"elements; here it takes a literal separator of at most "
                    f"{SHORT_SEPARATOR_BYTES} bytes.",
                    hint="Join with array_to_string(list, separator), which checks the size "
                    "of what it builds on the values.",
                    details={"function": name, "limit_bytes": MAX_VALUE_BYTES},
                )
        return


def _check_format(name: str, arguments: list[dict[str, Any]] | None) -> None:
    first = arguments[0] if arguments else None
    literal = first.get("literal") if isinstance(first, dict) else None
    kind = literal.get("kind") if isinstance(literal, dict) else None
    text = literal.get("text") if isinstance(literal, dict) and kind == "STRING" else None
    if not isinstance(text, str):
        raise ValueTooLarge(
            f"{name}() takes its format as a literal string here, so the size of what it "
            "builds is known before it runs.",
            hint=f"Write the format inline: {name}('%s ...', ...).",
            details={"function": name, "limit_bytes": MAX_VALUE_BYTES},
        )
    if name == "printf":
        specs = [w for spec in _PRINTF_SPEC.finditer(text) for w in spec.groups() if w]
    else:
        specs = [s for spec in _FMT_SPEC.finditer(text) for s in _NUMBER.findall(spec[1])]
        if re.search(r"\{[^{}]*:[^{}]*\{", text):
            specs.append("*")  # a width taken from an argument: {:>{}}
    for spec in specs:
        if spec == "*" or int(spec) > MAX_VALUE_BYTES:
            raise ValueTooLarge(
                f"{name}() with the width or precision {spec!r} could build a value over "
                f"{MAX_VALUE_BYTES:,} bytes (max_value_bytes).",
                details={"function": name, "limit_bytes": MAX_VALUE_BYTES},
            )


def check_types(tree: Any) -> None:
    """Refuse a query whose types (in casts, ``::``, typed literals) declare more than
    :data:`MAX_TYPE_ELEMENTS` fixed-size ARRAY elements in all."""
    total = 0
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("class") == "TYPE":
                try:
                    total += _elements(item)
                except RecursionError:
                    raise SqlTooLarge("The SQL nests a type too deeply to check.") from None
            else:
                stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    if total > MAX_TYPE_ELEMENTS:
        raise ValueTooLarge(
            f"The query's types declare {total:,} ARRAY elements; a query may declare at most "
            f"{MAX_TYPE_ELEMENTS:,} (a fixed-size ARRAY type makes a value of that many "
            "elements, a NULL too).",
            hint="Cast to a smaller ARRAY, or to a list (BIGINT[]), whose values are only as "
            "long as what they hold.",
            details={"elements": total, "limit_elements": MAX_TYPE_ELEMENTS},
        )


def _elements(node: dict[str, Any]) -> int:
    """How many elements one value of the type ``node`` holds at least: an ARRAY's size
    times its element type's; a STRUCT's, UNION's or MAP's fields added up; 1 otherwise (a
    list holds what it is given)."""
    children = [c for c in node.get("children") or [] if isinstance(c, dict)]
    inner = sum(_elements(c) for c in children if c.get("class") == "TYPE") or 1
    if str(node.get("type_name") or "").lower() != "array":
        return inner
    sizes = [c.get("literal") for c in children if c.get("class") == "CONSTANT"]
    text = sizes[0].get("text") if sizes and isinstance(sizes[0], dict) else None
    size = int(text) if isinstance(text, str) and text.isdigit() else 1
    return inner * max(size, 1)
