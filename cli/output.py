"""Printing results: ``--json`` for machines, tables for people."""

from __future__ import annotations

import errno
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agnes_sync.plural import counted as counted  # the CLI says counts with it too
from agnes_sync.printable import printable as printable  # the notebook's text too

if TYPE_CHECKING:
    from rich.text import Text


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def size(value: int | float | None) -> str:
    """A byte count in human units, as the MCP tools print them."""
    from agnes_sync.human_size import human_size

    return human_size(value)


def count(value: int | None) -> str:
    """A row or byte count with thousands separators."""
    return "?" if value is None else f"{value:,}"


def _is_id(key: str) -> bool:
    return key == "id" or key.endswith("_id")


NULL = "NULL"  # a SQL NULL among query values (dimmed on a terminal): never "-", a value


def _cell(key: str, value: Any) -> str:
    """A listing's cell, for people: counts grouped, times to the minute, none as ``-``."""
    if isinstance(value, int) and not isinstance(value, bool) and not _is_id(key):
        return f"{value:,}"
    if isinstance(value, float):
        return _number(value)
    return printable(_text(value))


def _number(value: float) -> str:
    """A listing's fraction, for people: three decimals at most, grouped (a duration of
    ``8.186104998458177`` ms reads ``8.186``); a tiny one in three significant digits."""
    if value != 0 and abs(value) < 0.001:
        return f"{value:.3g}"
    return f"{value:,.3f}".rstrip("0").rstrip(".")


def _value_cell(value: Any) -> Text:
    """A query value as DuckDB writes it (``true``, ``[1, NULL]``, the string as it is),
    a NULL as :data:`NULL`, dimmed: a string ``'-'`` or ``'NULL'`` prints plain."""
    from rich.text import Text

    from agnes_mcp.rails.value_text import nested_text

    if value is None:
        return Text(NULL, style="dim")
    return Text(printable(nested_text(value)))


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
    rows: Sequence[dict[str, Any]],
    columns: Sequence[tuple[str, str]],
    title: str | None = None,
    *,
    values: bool = False,
) -> None:
    """``columns`` are ``(key, header)`` pairs. A listing's integers (counts, bytes) are
    printed with thousands separators (except ids) and a missing value as ``-``; with
    ``values=True`` (query results) every value is printed as it is and a NULL as
    :data:`NULL`."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, show_lines=False, header_style="bold")
    for _, header in columns:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(
            *(
                _value_cell(row.get(key)) if values else Text(_cell(key, row.get(key)))
                for key, _ in columns
            )
        )

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # rich exits with 1 itself; let the command end as any broken pipe does.
            raise BrokenPipeError(errno.EPIPE, "the reader of stdout went away")

    # Piped output has no terminal width; do not fold columns at rich's default of 80.
    console = _Console() if sys.stdout.isatty() else _Console(width=200)
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
