"""Saying in words what a query's answer is: why its rows are not the whole answer (the
limit that cut them and how to get the rest) and a one-line summary. The CLI and the
notebook API print the same sentences; ``flag`` names the caller's way to set the row
limit (``--limit`` on the command line, ``limit=`` in Python).
"""

from __future__ import annotations

from agnes_mcp.rails.results import Answer, byte_cap_said
from agnes_sync.human_size import human_size
from agnes_sync.plural import counted


def cut_sentence(answer: Answer, flag: str = "--limit") -> str | None:
    """Why the rows are not the whole answer, naming the limit and how to get the rest
    (``flag``: the option that sets the row limit); None for a whole answer."""
    if not answer.truncated:
        return None
    shown = answer.row_count
    total = answer.total_rows
    of = f" of {total:,}" if total is not None and total > shown else ""
    first = f"first {shown:,}{of} rows"
    limit = answer.row_limit
    if answer.reason == "bytes":
        return (
            f"{first}: the result hit the byte cap ({byte_cap_said(answer.byte_limit)}). "
            "Select fewer or narrower columns, aggregate, or filter to get the rest."
        )
    if answer.row_limit_source == "cap" and limit is not None:
        return (
            f"{first}: the row cap (max_result_rows) of {limit:,} applied; a larger {flag} "
            "cannot raise it. Aggregate or filter in SQL, or page with ORDER BY ... LIMIT/OFFSET, "
            "to get the rest."
        )
    if answer.row_limit_source == "default" and limit is not None:
        return (
            f"{first}: no {flag} was given, so the default of {limit:,} applied. Pass {flag} N "
            "(up to the row cap), aggregate, or filter to get the rest."
        )
    if answer.row_limit_source == "requested" and limit is not None:
        return (
            f"{first}: {flag} {limit:,}. Raise {flag} (up to the row cap), aggregate, or "
            "filter to get the rest."
        )
    # A server that does not say which limit applied: relay what it says.
    if answer.truncation is not None:
        return f"{first}: {answer.truncation.how_to_get_more}"
    return f"{first}: a row limit cut the result. Aggregate or filter to get the rest."


def rows_said(count: int) -> str:
    return counted(count, "row")


def cost_said(
    bytes_scanned: int, remaining_budget_bytes: int | None, bytes_billed: int | None = None
) -> list[str]:
    """What a query cost, where it means something: the bytes a warehouse scanned, what it
    billed where that differs, and the daily budget left (a local query scans no
    warehouse: nothing to say)."""
    said = []
    if bytes_scanned or remaining_budget_bytes is not None:
        said.append(f"{human_size(bytes_scanned)} scanned")
    if bytes_billed is not None:
        said.append(f"{human_size(bytes_billed)} billed")
    if remaining_budget_bytes is not None:
        said.append(f"{human_size(remaining_budget_bytes)} of daily budget left")
    return said


def summary_line(answer: Answer) -> str:
    p = answer.provenance
    parts = [
        rows_said(answer.row_count),
        p.engine,
        *cost_said(answer.bytes_scanned, answer.remaining_budget_bytes, answer.bytes_billed),
        f"{p.duration_ms:g} ms",
    ]
    line = " · ".join(parts)
    if answer.truncated:
        line += f" · truncated ({answer.reason})"
    return line
