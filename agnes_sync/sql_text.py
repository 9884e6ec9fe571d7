"""Quoting for the few SQL strings the engine builds from names and paths it controls."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """A DuckDB identifier, double-quoted."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A DuckDB string literal, single-quoted."""
    return "'" + value.replace("'", "''") + "'"
