"""CSV numbers with more digits than a DOUBLE keeps, read exactly.

DuckDB's sniffer types a column of numbers with a fraction (or an integer past HUGEINT)
DOUBLE: about 15 significant digits, so ``0.12345678901234567890`` was published as
``0.12345678901234568`` without a word. A column whose text (in any row) holds more is
read as the DECIMAL that holds every value, or, past DuckDB's 38 digits or in a form a
DECIMAL cannot read (an exponent, NaN), as its exact text; the sync's notes name each.
"""

from __future__ import annotations

import duckdb

from agnes_sync.sql_text import quote_ident
from agnes_sync.wide_decimals import DUCKDB_MAX_DECIMAL_DIGITS

DOUBLE = "DOUBLE"
# Significant digits a DOUBLE gives back exactly as written (C's DBL_DIG).
DOUBLE_DIGITS = 15


def longest_sql(name: str) -> str:
    """An aggregate over a DOUBLE column read as text: its longest value. One of no more
    than 15 characters holds no more than the 15 digits a DOUBLE keeps (the cheap check
    over every row; :func:`digits_sql` runs only past it)."""
    return f"max(length(trim({quote_ident(name)})))"


def _mantissa(text: str) -> str:
    """SQL: the significant digits of the number ``text`` reads (no sign, point,
    exponent, leading or trailing zeros): ``1.50`` and ``15e-1`` are both ``15``."""
    return (
        f"trim(regexp_replace(regexp_replace(lower(trim({text})), 'e.*$', ''), "
        "'[^0-9]', '', 'g'), '0')"
    )


def digits_sql(name: str) -> str:
    """Aggregates over a DOUBLE column read as text, for :func:`exact_type`: whether every
    value is a plain decimal, its most integer digits, its most fraction digits, and
    whether a DOUBLE loses digits of any value (its digits are not those of the DOUBLE it
    reads as: a number written from a DOUBLE, 0.30000000000000004, loses none)."""
    c = quote_ident(name)
    lossy = _mantissa(c) + " <> " + _mantissa(f"TRY_CAST({c} AS DOUBLE)::VARCHAR")
    return (
        rf"bool_and({c} IS NULL OR regexp_full_match({c}, '\s*[+-]?[0-9]*\.?[0-9]*\s*')), "
        rf"max(length(ltrim(regexp_extract({c}, '^\s*[+-]?([0-9]*)', 1), '0'))), "
        rf"max(length(regexp_extract({c}, '\.([0-9]*)', 1))), "
        f"coalesce(bool_or({lossy}) FILTER (WHERE length(trim({c})) > {DOUBLE_DIGITS}), false)"
    )


def exact_type(plain: bool | None, whole: int | None, scale: int | None, lossy: bool) -> str:
    """The type that keeps a column's every value, from :func:`digits_sql`'s aggregates:
    DOUBLE when it keeps them, else the DECIMAL that holds them, else VARCHAR."""
    if not lossy:
        return DOUBLE
    whole, scale = max(whole or 0, 1), scale or 0
    if plain and whole + scale <= DUCKDB_MAX_DECIMAL_DIGITS:
        return f"DECIMAL({whole + scale},{scale})"
    return "VARCHAR"


def exact_types(con: duckdb.DuckDBPyConnection, source: str, names: list[str]) -> dict[str, str]:
    """The type that keeps every value of each of ``names`` (read as text from the
    relation ``source``), for those a DOUBLE would not keep."""
    if not names:
        return {}
    counted = ", ".join(digits_sql(n) for n in names)
    found = con.execute(f"SELECT {counted} FROM {source}").fetchone() or ()
    typed = {}
    for index, name in enumerate(names):
        kind = exact_type(*found[4 * index : 4 * index + 4])
        if kind != DOUBLE:
            typed[name] = kind
    return typed


def retyped_note(retyped: dict[str, str]) -> str | None:
    """What the sync says of the DOUBLE columns it read exactly (None when none)."""
    if not retyped:
        return None
    named = ", ".join(
        f"{name} {kind}" + (" (exact text)" if kind == "VARCHAR" else "")
        for name, kind in sorted(retyped.items())
    )
    return (
        f"numbers with more than the {DOUBLE_DIGITS} significant digits a DOUBLE keeps, "
        f"read exactly rather than rounded: {named}"
    )
