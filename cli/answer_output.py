"""Printing a query's rows (``query``, ``describe``, ``metrics query``) as a table, JSON or
CSV, always saying when the rows are not the whole answer: which limit cut them and how to
get the rest.

- table: the rows (each value as DuckDB writes it, a NULL as ``NULL``, dimmed on a
  terminal), then a ``truncated: ...`` line and any notes (stdout); a summary line
  (rows, engine, bytes scanned) on stderr;
- JSON: the rows with every field of the answer (``truncated``, ``reason``, ``truncation``,
  ``row_limit``, ``row_limit_source``, ``total_rows``, ``notes``, ...);
- CSV: stdout holds only the data (a NULL as an empty field, an empty string as ``""``);
  the ``truncated: ...`` line, notes and the summary go to stderr, and a cut result
  exits with ``exit_codes.TRUNCATED``.
"""

from __future__ import annotations

import csv
import json
import sys
import textwrap
from typing import TYPE_CHECKING, Any

from agnes_mcp.rails.answer_text import cut_sentence, summary_line
from cli import exit_codes
from cli.output import print_table, printable

if TYPE_CHECKING:
    import pyarrow as pa

    from agnes_mcp.rails.results import Answer

CSV_SLICE_ROWS = 1024
SLICE_BYTES = 1 << 20  # of Arrow rendered at a time (CSV, JSON), one row at least


def print_answer(answer: Answer, form: str, flag: str = "--limit") -> int:
    """Print ``answer`` as ``form`` (table, json, csv); the exit code: ``TRUNCATED`` for a
    cut CSV (its data cannot say so), else ``OK``."""
    from agnes_mcp.rails.results import rows_of
    from agnes_mcp.rails.value_text import display_rows

    table = answer.table
    cut = cut_sentence(answer, flag)
    said = ([f"truncated: {cut}"] if cut else []) + [f"note: {n}" for n in answer.notes]
    if form == "csv":
        _write_csv(table)
        for line in [*said, summary_line(answer)]:
            sys.stderr.write(printable(line) + "\n")
        return exit_codes.TRUNCATED if cut else exit_codes.OK
    if form == "json":
        _write_json(answer)
        return exit_codes.OK
    rows = rows_of(table)  # every value DuckDB returns, rendered (infinite dates too)
    # the text forms, table and CSV alike: timestamps and decimals as DuckDB writes them
    # (JSON keeps its own: ISO 8601 times, decimals as numbers)
    rows = display_rows(rows, [field.type for field in table.schema])
    names = table.column_names
    print_table(
        [{str(i): v for i, v in enumerate(row)} for row in rows],
        [(str(i), name) for i, name in enumerate(names)],
        values=True,
    )
    for line in said:
        sys.stdout.write(printable(line) + "\n")
    sys.stdout.flush()
    sys.stderr.write(printable(summary_line(answer)) + "\n")
    return exit_codes.OK


def _write_json(answer: Answer) -> None:
    """``answer`` as the JSON document ``print_json`` writes (columns, rows, then what is
    said about them), its rows rendered and written a slice at a time: the whole answer
    as Python values and indented text took six to nine times its Arrow memory (a few
    gigabytes for an answer of blobs at the byte cap)."""
    from agnes_mcp.rails.results import columns_of, row_slices, rows_of

    table = answer.table
    document = {
        "columns": [c.model_dump() for c in columns_of(table)],
        "rows": [],
        **answer.model_dump(mode="json"),
    }
    head, _, tail = json.dumps(document, indent=2, default=str).partition('"rows": []')
    sys.stdout.write(head + '"rows": [')
    written = False
    for piece in row_slices(table, SLICE_BYTES, CSV_SLICE_ROWS):
        text = ",".join(
            "\n" + textwrap.indent(json.dumps(row, indent=2, default=str), "    ")
            for row in rows_of(piece)
        )
        sys.stdout.write(("," if written and text else "") + text)
        written = written or bool(text)
    sys.stdout.write(("\n  ]" if written else "]") + tail + "\n")


def _write_csv(table: pa.Table) -> None:
    """``table`` as CSV on stdout, rendered and written a slice of rows at a time: the
    whole answer as Python values and text took three to four times its Arrow memory."""
    from agnes_mcp.rails.results import row_slices, rows_of
    from agnes_mcp.rails.value_text import display_rows

    kinds = [field.type for field in table.schema]
    writer = csv.writer(sys.stdout)
    writer.writerow(table.column_names)
    for piece in row_slices(table, SLICE_BYTES, CSV_SLICE_ROWS):
        for row in display_rows(rows_of(piece), kinds):
            if "" in row:  # csv.writer would write it as it writes a NULL: nothing
                sys.stdout.write(_csv_line(row))
            else:
                writer.writerow(["" if v is None else _csv_cell(v) for v in row])
    sys.stdout.flush()


def _csv_line(values: list[Any]) -> str:
    """One CSV record of a row holding an empty string, as ``csv.writer`` writes a row
    (RFC 4180, CRLF-terminated) but for that: a NULL is an empty field and an empty
    string ``""``, as DuckDB's own CSV writer (and PostgreSQL's) writes them, so the two
    read back apart; ``csv.writer`` writes both as nothing."""
    return ",".join(_csv_field(value) for value in values) + "\r\n"


def _csv_field(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(_csv_cell(value))
    if not text or "," in text or '"' in text or "\n" in text or "\r" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_cell(value: Any) -> Any:
    """A value as DuckDB writes it (``true``, ``[a, b]``), not as Python would (``True``,
    ``['a']``): as the table prints it, and as DuckDB's own CSV writer does."""
    from agnes_mcp.rails.value_text import nested_text

    return nested_text(value) if isinstance(value, (bool, list, dict)) else value
