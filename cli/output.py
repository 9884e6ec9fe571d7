"""Printing results: ``--json`` for machines, tables for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def printable(text: str) -> str:
    """``text`` with control and invisible formatting characters shown as escapes, so
    data from the server can never drive the terminal."""
    return "".join(ch if ch.isprintable() or ch in "\n\t" else ascii(ch)[1:-1] for ch in text)


def _cell(value: Any) -> str:
    return printable(_text(value))


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, str) and len(value) >= 19 and value[4:5] == "-" and "T" in value:
        try:
            return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            return value
    return str(value)


def print_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], title: str | None = None
) -> None:
    """``columns`` are ``(key, header)`` pairs."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, show_lines=False, header_style="bold")
    for _, header in columns:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(Text(_cell(row.get(key))) for key, _ in columns))
    # Piped output has no terminal width; do not fold columns at rich's default of 80.
    console = Console() if sys.stdout.isatty() else Console(width=200)
    console.print(table)
    if not rows:
        sys.stdout.write("(none)\n")


def print_message(text: str) -> None:
    sys.stdout.write(printable(text) + "\n")


def emit(
    data: Any,
    *,
    as_json: bool,
    rows: Sequence[dict[str, Any]] | None = None,
    columns: Sequence[tuple[str, str]] | None = None,
    message: str | None = None,
    title: str | None = None,
) -> None:
    """Print ``data`` as JSON, or as a table of ``rows``/a message for people."""
    if as_json:
        print_json(data)
        return
    if rows is not None and columns is not None:
        print_table(rows, columns, title)
    if message:
        print_message(message)
