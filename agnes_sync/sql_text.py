"""Quoting for the few SQL strings the engine builds from names and paths it controls, and
the body of one statement someone wrote, ready to be wrapped in a larger query."""

from __future__ import annotations

import re

import duckdb


def quote_ident(name: str) -> str:
    """A DuckDB identifier, double-quoted."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A DuckDB string literal, single-quoted."""
    return "'" + value.replace("'", "''") + "'"


def statement_body(sql: str) -> str:
    """``sql`` (one statement) without the semicolons that end it and the comments around
    them, read with DuckDB's own tokenizer, so ``SELECT 1; -- done`` and ``SELECT 1 -- x
    \n;`` can go inside ``(...)``: a ``;`` inside a string or a comment stays. What is
    left may end in a line comment; whoever wraps it starts the next line."""
    text = sql.strip()
    if ";" not in text:
        return text
    end = len(text)
    try:
        tokens = duckdb.tokenize(text)
    except duckdb.Error:  # not ours to judge here: DuckDB says what is wrong when it runs
        return text.rstrip(";").rstrip()
    for position, kind in reversed(tokens):
        if kind == duckdb.token_type.comment:
            continue
        if not text.startswith(";", position):
            break
        end = position
    return text[:end].rstrip()


_PYTHON_CLASS = re.compile(r"<class '(?:[\w.]+\.)?(\w+)'>")


def parse_problem(exc: Exception) -> str:
    """A sqlglot ParseError or TokenError in words: its first problem and where, without
    sqlglot's Python class names ("<class 'sqlglot.expressions.core.Condition'>")."""
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    where = ""
    errors = getattr(exc, "errors", None) or []
    if errors:
        detail = errors[0].get("description") or detail
        line, col = errors[0].get("line"), errors[0].get("col")
        if line is not None and col is not None:
            where = f" (line {line}, column {col})"
    detail = _PYTHON_CLASS.sub(lambda m: m.group(1), detail)
    return f"{detail.rstrip('.')}{where}"
