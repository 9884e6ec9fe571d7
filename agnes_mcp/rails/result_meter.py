"""The bytes an answer's conversion to Arrow would build, counted by DuckDB before it builds them.

DuckDB holds a value once however many rows refer to it (a scalar subquery's, a join's
build side, one column selected ten times), but the conversion of an answer to Arrow,
2,048 rows a batch, copies it for every row and column, outside ``memory_limit``: a
2 MB ``string_agg`` given to 200,000 orders by a scalar subquery made one batch of 4 GB
before the byte cap, checked after each batch, could stop anything. So a query that can
build a large value (it names an aggregate whose value grows with its input, a top-n
aggregate with an n, or a function :mod:`value_guards` wraps) has its answer metered:
its result types are bound first (0.05-0.3 ms), and DuckDB adds up, row by row in a
streaming window, the bytes each row's variable-width values would take in Arrow; a
row past the byte cap has them replaced by NULL, so it costs nothing to convert, and the
reader cuts the answer there (``reason: bytes``). A query naming none of these may still
repeat a large value (a plain join of a table holding a 2 MB text): DuckDB tests each of
its rows (:func:`row_guarded_sql`, no running total) and stops at one too large for a
batch, and the answer is run again metered, so the byte cap never rests on a text check
alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from agnes_mcp.rails.value_guards import GUARDED
from agnes_mcp.rails.window_values import GROWING, TOP_N
from agnes_sync.sql_text import quote_ident, quote_literal

# Bytes a variable-width value takes besides its content (Arrow offsets, validity), and
# a list element's at most (a fixed-width child).
_OVERHEAD = 16
_STRINGS = frozenset({"varchar", "blob", "bit"})
_LISTS = frozenset({"list", "array"})
# Types whose size is read from their text (rare in answers), which is what an answer
# holds of them (:mod:`answer_stream` casts them to text).
_AS_TEXT = frozenset({"variant", "bignum", "varint", "geometry"})
METER_COLUMN = "agnes_result_bytes"
# What a guarded answer's row past its bytes raises (:func:`row_guarded_sql`).
ROW_TOO_LARGE = "agnes: a row of the answer is larger than a batch may hold"
# A top-n aggregate's name as a word, up to its next parenthesis (a comment or a quote may
# stand between them): its call is checked for an n.
_TOP_N_CALL = re.compile(r"\b(?:" + "|".join(sorted(TOP_N)) + r")\b[^(]*\(")  # case-folded
# Functions that grow a value by more than its input, nested in each other (hex(hex(s)):
# twice a level), and what joins values into a larger one (s || s), which grows a value
# only through levels of subqueries (a CTE doubling the one before).
_ENCODERS = ("hex", "bin", "base64", "url_encode", "json", "escape", "quote", "u&")
_COMBINERS = ("||", "concat", "format", "printf", "_cat", "append", "prepend", "merge")
_BUILDERS = tuple(
    name
    for name in sorted({*GROWING, *GUARDED, *_ENCODERS})
    # one that holds another (listagg, list) is found by the shorter
    if not any(other != name and other in name for other in {*GROWING, *GUARDED, *_ENCODERS})
)


def needs_meter(sql: str) -> bool:
    """Whether ``sql`` could build a value large enough that copies of it per row would
    pass the memory a batch may take: it names a growing aggregate, a wrapped function or
    an encoder, calls a top-n aggregate with more than one argument (``max(x, n)``), or
    combines values (``||``) in a query of subqueries. Only what it finds is metered, so
    it looks for names as substrings: a false find costs a bind, a missed one memory."""
    folded = sql.casefold()
    if any(name in folded for name in _BUILDERS):
        return True
    if folded.count("select") > 1 and any(join in folded for join in _COMBINERS):
        return True
    return any(_has_second_argument(folded, call.end()) for call in _TOP_N_CALL.finditer(folded))


def _has_second_argument(sql: str, start: int) -> bool:
    """Whether the call whose arguments begin at ``start`` has a comma at its own depth."""
    depth = 0
    for char in sql[start:]:
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                return False
            depth -= 1
        elif char == "," and depth == 0:
            return True
    return False


def size_of(expr: str, kind: Any, depth: int = 0) -> str | None:
    """SQL for the bytes a value ``expr`` of the DuckDB type ``kind`` (a DuckDBPyType)
    takes in Arrow beyond a fixed width, or None for a fixed-width type."""
    name = str(kind.id)
    if name == "varchar":
        return f"strlen({expr})"
    if name in _STRINGS:
        return f"octet_length({expr})"
    if name in _AS_TEXT:
        return f"strlen(CAST({expr} AS VARCHAR))"
    if name == "union":  # its members after the tag; all but one are NULL in a value
        members = [
            size_of(f"union_extract({expr}, {quote_literal(member)})", child, depth)
            for member, child in kind.children[1:]
        ]
        sizes = [f"coalesce({m}, 0)" for m in members if m is not None]
        return "(" + " + ".join(sizes) + ")" if sizes else None
    if name in _LISTS:
        element = f"agnes_e{depth}"
        child = size_of(element, kind.children[0][1], depth + 1)
        whole = f"len({expr}) * {_OVERHEAD}"
        if child is None:
            return whole
        inner = f"coalesce({child}, 0)"
        return (
            f"({whole} + coalesce(list_sum(list_transform({expr}, lambda {element}: {inner})), 0))"
        )
    if name == "map":
        key, value = kind.children[0][1], kind.children[1][1]
        parts = [
            f"len(map_keys({expr})) * {2 * _OVERHEAD}",
            *(
                f"coalesce(list_sum(list_transform({part}({expr}), lambda {element}: {size})), 0)"
                for part, child in (("map_keys", key), ("map_values", value))
                for element in [f"agnes_e{depth}"]
                for size in [size_of(element, child, depth + 1)]
                if size is not None
            ),
        ]
        return "(" + " + ".join(parts) + ")"
    if name == "struct":
        fields = [
            size_of(f"struct_extract_at({expr}, {i})", child, depth)
            for i, (_, child) in enumerate(kind.children, start=1)
        ]
        sizes = [f"coalesce({f}, 0)" for f in fields if f is not None]
        return "(" + " + ".join(sizes) + ")" if sizes else None
    return None


def metered_sql(sql: str, names: Sequence[str], types: Sequence[Any], cap: int) -> str | None:
    """``sql`` (one SELECT) with a last column: the running total of the bytes its rows'
    variable-width values take, each row's values past ``cap`` replaced by NULL; None when
    no column is of variable width (nothing to meter)."""
    sizes = _sizes(types)
    if not sizes:
        return None
    total = _sum([f"coalesce({size}, 0)" for size in sizes.values()])
    meter = len(names) + 1
    columns = ", ".join(
        (f"CASE WHEN #{meter} > {int(cap)} THEN NULL ELSE #{i} END" if i in sizes else f"#{i}")
        + f" AS {quote_ident(name)}"
        for i, name in enumerate(names, start=1)
    )
    window = " OVER (ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    return (
        f"SELECT {columns}, #{meter} AS {quote_ident(METER_COLUMN)} FROM (SELECT *, "
        # ``sql`` starts on this text's first line: an engine error's line stays the one
        # the caller's wrapper gave it (a newline before it put every error a line low)
        f"sum(({total})::DOUBLE){window} FROM ({sql}\n) AS agnes_sized) AS agnes_metered"
    )


def _sizes(types: Sequence[Any]) -> dict[int, str]:
    """The SQL sizing each variable-width column (by position) of an answer of ``types``."""
    return {
        i: size
        for i, kind in enumerate(types, start=1)
        if (size := size_of(f"#{i}", kind)) is not None
    }


def _sum(terms: list[str]) -> str:
    """``terms`` added as a balanced tree: DuckDB's parser nests a chain of ``+`` one
    level a term, and refuses past 1,000 levels (an answer of 1,000 text columns)."""
    if len(terms) == 1:
        return terms[0]
    half = len(terms) // 2
    return f"({_sum(terms[:half])} + {_sum(terms[half:])})"


def row_guarded_sql(
    sql: str,
    names: Sequence[str],
    types: Sequence[Any],
    row_bytes: int,
    *,
    limit: int | None = None,
) -> str | None:
    """``sql`` (one SELECT; at most ``limit`` rows of it) stopped by DuckDB, with the
    error :data:`ROW_TOO_LARGE`, at its first row whose variable-width values take more
    than ``row_bytes``, before that row's batch is converted; None when no column is of
    variable width. It guards the answer of a query :func:`needs_meter` does not find,
    which may still repeat a large value from a table (a plain join gave a 2 MB text to
    200,000 rows): a batch of rows under ``row_bytes`` each stays under the byte cap; a
    row over it means the answer is run again metered. One column's expression tests the
    row's size, at the level of the ``LIMIT`` (a projection: a filter would be pushed
    below an ``ORDER BY`` and test rows the answer never holds); the answer keeps its own
    columns (a size column and a test per column cost DuckDB's planner more than the
    answer of a small query itself)."""
    sizes = _sizes(types)
    if not sizes:
        return None
    terms = list(sizes.values())
    # one term NULL (a NULL value) makes the test NULL, which is no error; of several,
    # a NULL one is 0 so it cannot hide another's size
    total = terms[0] if len(terms) == 1 else _sum([f"coalesce({t}, 0)" for t in terms])
    tested = next(iter(sizes))
    test = f"{total} > {int(row_bytes)}"
    columns = ", ".join(
        (
            f"CASE WHEN {test} THEN error({quote_literal(ROW_TOO_LARGE)}) ELSE #{i} END"
            if i == tested
            else f"#{i}"
        )
        + f" AS {quote_ident(name)}"
        for i, name in enumerate(names, start=1)
    )
    # The caller's text is on the second line, as in the plain answer's wrapper (an
    # engine error's line is moved up by one): under a ``limit``, ``sql`` is that text;
    # without, ``sql`` wraps it already. The newline after it keeps a trailing
    # "-- comment" from swallowing the closing parenthesis.
    if limit is None:
        return f"SELECT {columns} FROM ({sql}\n) AS agnes_guarded"
    return f"SELECT {columns} FROM (\n{sql}\n) AS agnes_result LIMIT {int(limit)}"


def row_too_large(message: str) -> bool:
    """Whether a DuckDB error (also one relayed through the Arrow stream) is a guarded
    answer's row past its bytes (:func:`row_guarded_sql`)."""
    return ROW_TOO_LARGE in message


def fixed_width_schema(schema: pa.Schema) -> bool:
    """Whether every column of an answer of ``schema`` is of fixed width in Arrow (a
    number, a boolean, a date or time, NULL), so no row of it needs its size tested."""
    return all(_fixed_arrow(field.type) for field in schema)


def _fixed_arrow(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_null(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_temporal(kind)
        or pa.types.is_fixed_size_binary(kind)
    )


def cut(batch: pa.RecordBatch, cap: int) -> tuple[pa.RecordBatch, bool]:
    """``batch`` of a metered answer without its meter column, cut before its first row
    past ``cap``, and whether it was cut."""
    meter = batch.column(batch.num_columns - 1)
    rows = batch.select(range(batch.num_columns - 1))
    most = pc.max(meter).as_py()
    if most is None or most <= cap:  # the usual batch: one pass
        return rows, False
    over = pc.index(pc.greater(pc.fill_null(meter, 0), cap), True).as_py()
    if over < 0:
        return rows, False
    return rows.slice(0, over), True
