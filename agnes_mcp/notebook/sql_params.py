"""``{name}`` in a ``%%agnes_sql`` cell: a Python value bound as one SQL literal, never
pasted in as SQL text.

The rules (:func:`bind`):

- ``{name}`` (no spaces inside the braces) is replaced by the value of the notebook
  variable ``name`` written as a literal by sqlglot: a ``str`` becomes one quoted string
  (quotes and backslashes escaped for the dialect, so ``"a'); DROP TABLE t; --"`` stays a
  string), ``int``/``float``/``Decimal`` a number (a negative one in parentheses, so
  ``5-{x}`` never reads as ``5--1``, a comment), ``bool`` ``TRUE``/``FALSE``, ``None``
  ``NULL``, a ``date`` ``CAST('2024-01-31' AS DATE)``, a ``datetime`` a timestamp, and a
  ``list``/``tuple`` of these a parenthesised list for ``IN``. Anything else (a
  DataFrame, a dict, NaN) is refused with the reason. A value cannot stand for a table or
  column name: ``FROM {t}`` reads a string, which the rails refuse. numpy's ``bool_`` is
  a bool; pandas' ``NaT``, like NaN, has no literal (use None for NULL).
- Inside a quoted string (``'{x}'``), a quoted identifier (``"{x}"``) or a comment
  (``-- {x}``, ``/* {x} */``), braces are text and nothing is substituted: write ``{x}``
  without quotes; the value is quoted for you.
- ``{{`` is a literal ``{`` and the ``}}`` closing it a literal ``}`` (``{{x}}`` is the
  text ``{x}``). Other braces stay as they are, so DuckDB's ``{'a': 1}`` needs no escape.
- A name that is no variable is an error naming it (:class:`BindError`).

Which text is a string or a comment is decided by sqlglot's tokenizer in the dialect the
query runs in, the same one the rails parse it with.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.tokenizer_core import Token, TokenType

DUCKDB = "duckdb"
SUPPORTED = "str, int, float, Decimal, bool, None, date, datetime, or a list or tuple of these"


class BindError(ValueError):
    """A ``{name}`` in the cell cannot be bound; the message says which and why."""


def _scalar(value: object, name: str) -> exp.Expr:
    if getattr(getattr(value, "dtype", None), "kind", None) == "b" and (
        getattr(value, "shape", None) == ()  # numpy's bool_ (an array is refused below)
    ):
        value = bool(value)
    if isinstance(value, dt.date) and value != value:  # pandas' NaT: no date at all
        raise BindError(f"{{{name}}} is {value}, which has no SQL literal; use None for NULL.")
    if value is None or isinstance(value, bool | str | dt.date):
        return exp.convert(value)
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise BindError(f"{{{name}}} is {value}, which has no SQL literal.")
        return exp.Literal.number(str(value))
    if isinstance(value, numbers.Integral):  # numpy integers too
        return exp.convert(int(value))
    if isinstance(value, numbers.Real):  # numpy floats, fractions
        number = float(value)
        if not math.isfinite(number):
            raise BindError(f"{{{name}}} is {number}, which has no SQL literal; use None for NULL.")
        return exp.convert(number)
    kind = type(value).__name__
    raise BindError(f"{{{name}}} is a {kind}; only {SUPPORTED} can be bound as a literal.")


def literal(value: object, name: str = "value", dialect: str = DUCKDB) -> str:
    """``value`` as one SQL literal in ``dialect`` (``name`` is for error messages)."""
    if isinstance(value, list | tuple):
        if not value:
            raise BindError(
                f"{{{name}}} is an empty {type(value).__name__}: 'IN ()' is not SQL. "
                "Skip the condition when there is nothing to match."
            )
        nested = next((v for v in value if isinstance(v, list | tuple)), None)
        if nested is not None:
            raise BindError(f"{{{name}}} holds a nested {type(nested).__name__}; bind a flat list.")
        node: exp.Expr = exp.Tuple(expressions=[_scalar(v, name) for v in value])
    else:
        node = _scalar(value, name)
    text = node.sql(dialect=dialect)
    # A negative number after a minus (``5-{x}``) would read as ``5--1``: a comment that
    # hides the rest of the line. In parentheses it is one value wherever it stands.
    return f"({text})" if text.startswith("-") else text


def _adjacent(first: Token, second: Token) -> bool:
    return first.end + 1 == second.start


def _doubled(token: Token, following: Token | None) -> bool:
    """``{{`` or ``}}``: ``token`` and the same brace right after it."""
    return (
        following is not None
        and following.token_type == token.token_type
        and _adjacent(token, following)
    )


def _placeholder(sql: str, tokens: Sequence[Token], i: int) -> str | None:
    """The name of ``{name}`` starting at ``tokens[i]`` (an L_BRACE), else None."""
    if i + 2 >= len(tokens):
        return None
    word, close = tokens[i + 1], tokens[i + 2]
    if close.token_type != TokenType.R_BRACE:
        return None
    if not (_adjacent(tokens[i], word) and _adjacent(word, close)):
        return None
    text = sql[word.start : word.end + 1]  # a quoted identifier's text differs from this
    return text if text.isidentifier() and word.text == text else None


def _bind_one(sql: str, namespace: Mapping[str, object], dialect: str) -> str:
    try:
        engine = Dialect.get_or_raise(dialect)
    except ValueError:
        raise BindError(f"No SQL dialect '{dialect}' is known here to write literals in.") from None
    try:
        tokens = engine.tokenize(sql)
    except sqlglot.errors.TokenError as exc:
        raise BindError(f"The cell's SQL cannot be read ({dialect}): {exc}") from None
    parts: list[str] = []
    done = 0  # sql[:done] is in parts
    escaped = 0  # '{{' seen whose '}}' is still to come
    i = 0
    while i < len(tokens):
        token = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if token.token_type == TokenType.L_BRACE:
            if _doubled(token, following):
                parts += [sql[done : token.start], "{"]
                done, escaped, i = token.end + 2, escaped + 1, i + 2  # past both braces
                continue
            name = _placeholder(sql, tokens, i)
            if name is not None:
                if name not in namespace:
                    raise BindError(
                        f"{{{name}}}: there is no variable '{name}' in the notebook. Define "
                        f"it first, or write {{{{{name}}}}} for the text {{{name}}}."
                    )
                parts += [sql[done : token.start], literal(namespace[name], name, dialect)]
                done, i = tokens[i + 2].end + 1, i + 3
                continue
        elif token.token_type == TokenType.R_BRACE and escaped and _doubled(token, following):
            parts += [sql[done : token.start], "}"]
            done, escaped, i = token.end + 2, escaped - 1, i + 2
            continue
        i += 1
    parts.append(sql[done:])
    return "".join(parts)


def bind(sql: str, namespace: Mapping[str, object], dialects: Iterable[str] = (DUCKDB,)) -> str:
    """``sql`` with each ``{name}`` replaced by the literal of ``namespace[name]``.

    ``dialects``: the dialects the query may run in. When there are several (a remote
    query whose warehouse is not known), the bound SQL must read the same in each, else
    the binding is refused rather than guessed.
    """
    if "{" not in sql and "}" not in sql:
        return sql
    bound = {dialect: _bind_one(sql, namespace, dialect) for dialect in dict.fromkeys(dialects)}
    texts = set(bound.values())
    if len(texts) > 1:
        raise BindError(
            "The bound values would be written differently in "
            f"{' and '.join(sorted(bound))} SQL, and the cell does not say which warehouse "
            "it runs in: name the remote table by its Agnes id in the cell."
        )
    return texts.pop()


def _names(sql: str, table_id: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(table_id)}(?!\w)", sql, re.IGNORECASE) is not None


def remote_dialects(sql: str, engines: Mapping[str, str | None]) -> list[str]:
    """The dialects a remote query ``sql`` may be written in: that of the remote tables it
    names (``engines``: remote table id -> engine name), else of all remote tables, else
    DuckDB's."""
    named = {engine for table, engine in engines.items() if engine and _names(sql, table)}
    candidates = named or {engine for engine in engines.values() if engine}
    return sorted(_dialect_of(engine) for engine in candidates) or [DUCKDB]


def _dialect_of(engine: str) -> str:
    from agnes_mcp.rails.engine import UnknownEngine, engine_class

    try:
        return engine_class(engine).dialect
    except UnknownEngine:
        return engine  # an engine not installed here: its name is its dialect's
