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
import sys
from typing import TYPE_CHECKING, Any

from agnes_mcp.rails.answer_text import cut_sentence, summary_line
from cli import exit_codes
from cli.output import print_json, print_table, printable

if TYPE_CHECKING:
    import pyarrow as pa

    from agnes_mcp.rails.results import Answer

CSV_SLICE_ROWS = 1024


def print_answer(answer: Answer, form: str, flag: str = "--limit") -> int:
    """Print ``answer`` as ``form`` (table, json, csv); the exit code: ``TRUNCATED`` for a
    cut CSV (its data cannot say so), else ``OK``."""
    from agnes_mcp.rails.results import columns_of, rows_of
    from agnes_mcp.rails.value_text import display_rows

    table = answer.table
    cut = cut_sentence(answer, flag)
    said = ([f"truncated: {cut}"] if cut else []) + [f"note: {n}" for n in answer.notes]
    if form == "csv":
        _write_csv(table)
        for line in [*said, summary_line(answer)]:
            sys.stderr.write(printable(line) + "\n")
        return exit_codes.TRUNCATED if cut else exit_codes.OK
    rows = rows_of(table)  # every value DuckDB returns, rendered (infinite dates too)
    if form == "json":
        print_json(
            {
                "columns": [c.model_dump() for c in columns_of(table)],
                "rows": rows,
                **answer.model_dump(mode="json"),
            }
        )
        return exit_codes.OK
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


def _write_csv(table: pa.Table) -> None:
    """``table`` as CSV on stdout, rendered and written a slice of rows at a time: the
    whole answer as Python values and text took three to four times its Arrow memory."""
    from agnes_mcp.rails.results import rows_of
    from agnes_mcp.rails.value_text import display_rows

    kinds = [field.type for field in table.schema]
    writer = csv.writer(sys.stdout)
    writer.writerow(table.column_names)
    for start in range(0, table.num_rows, CSV_SLICE_ROWS):
        for row in display_rows(rows_of(table.slice(start, CSV_SLICE_ROWS)), kinds):
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
