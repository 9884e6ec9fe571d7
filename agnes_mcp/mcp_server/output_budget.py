"""Keeping tool output within an agent's context budget.

Every response is measured as the larger of its text block and its structured JSON
(clients hand one of them to the model) and kept under a budget: about 4k tokens by
default, up to the 25k-token ceiling when the caller asked for more rows explicitly.
Lists are cut to what fits; a query result that does not fit is kept under a result
handle and summarised (row count, column stats, first rows) instead of dumped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from agnes_mcp.mcp_server.backend import Backend
from agnes_mcp.mcp_server.tool_models import ColumnSummary, QueryOutput
from agnes_mcp.rails.answer_text import cost_said, rows_said
from agnes_mcp.rails.results import (
    Answer,
    Truncation,
    columns_of,
    json_value,
    row_slices,
    truncation_for,
)
from agnes_mcp.rails.value_text import (
    display_column,
    display_rows,
    nested_text,
    scalar_value,
    values_of,
)
from agnes_sync.plural import counted
from agnes_sync.sql_text import quote_ident

CHARS_PER_TOKEN = 4
DEFAULT_CHARS = 4_000 * CHARS_PER_TOKEN
CEILING_CHARS = 25_000 * CHARS_PER_TOKEN
EXPLICIT_CHARS = CEILING_CHARS // 2  # each of text and JSON, so both together stay under
CELL_CHARS = 300
FIRST_ROWS = 25
SUMMARY_COLUMNS = 50
SLICE_BYTES = 1 << 20  # of Arrow converted at a time, one row at least
CONVERT_ROWS = 5_000  # rows converted to JSON at most; more never fit any budget

T = TypeVar("T")


def budget(explicit: bool) -> int:
    return EXPLICIT_CHARS if explicit else DEFAULT_CHARS


def size_of(structured: dict[str, Any], text: str) -> int:
    return max(len(text), len(dumps(structured)))


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)


def fit(count: int, size: Callable[[int], int], limit: int) -> int:
    """The largest k <= count with size(k) <= limit (size grows with k); 0 if none."""
    if size(count) <= limit:
        return count
    low, high = 0, count
    while low < high:
        middle = (low + high + 1) // 2
        if size(middle) <= limit:
            low = middle
        else:
            high = middle - 1
    return low


def fit_items(
    items: Sequence[T], render: Callable[[Sequence[T]], tuple[dict[str, Any], str]], limit: int
) -> int:
    """How many leading ``items`` fit when rendered: each item's share is measured alone
    (one small render each, not repeated renders of long lists), then checked once."""
    if not items:
        return 0

    def sizes(chosen: Sequence[T]) -> tuple[int, int]:
        structured, text = render(chosen)
        return len(dumps(structured)), len(text)

    empty_json, empty_text = sizes([])
    json_total, text_total, count = empty_json, empty_text, 0
    for item in items:
        item_json, item_text = sizes([item])
        json_total += item_json - empty_json + 1  # and a separator
        text_total += item_text - empty_text + 1
        if max(json_total, text_total) > limit:
            break
        count += 1
    while count > 0 and size_of(*render(items[:count])) > limit:
        count -= 1
    return count


class Shortened(str):
    """A value cut to ``CELL_CHARS`` for the view (the answer itself is whole)."""


def shortened(text: str) -> str:
    """``text`` as a view shows it: past ``CELL_CHARS``, cut and ending in ``…(+N chars)``
    (a :class:`Shortened`); the MCP tools' rows and a notebook's HTML table alike."""
    if len(text) <= CELL_CHARS:
        return text
    return Shortened(text[:CELL_CHARS] + f"…(+{len(text) - CELL_CHARS} chars)")


def _cell_of(shown: Any) -> Any:
    """A JSON-ready value as a row shows it (shortened past ``CELL_CHARS``)."""
    if isinstance(shown, str):
        return shortened(shown)
    if isinstance(shown, (list, dict)):
        text = json.dumps(shown, default=str, ensure_ascii=False)
        if len(text) > CELL_CHARS:
            return shortened(text)
    return shown


def _shortened(rows: list[list[Any]]) -> list[str]:
    """The columns (by index, as text) holding a shortened value in ``rows``, once each."""
    return list(
        dict.fromkeys(str(i) for row in rows for i, v in enumerate(row) if isinstance(v, Shortened))
    )


def _whole_rows(table: pa.Table, start: int, count: int) -> list[list[Any]]:
    """Rows of ``table`` as JSON-ready values, none shortened."""
    part = table.slice(start, count)
    columns = [values_of(part.column(i)) for i in range(part.num_columns)]
    return [[json_value(col[r]) for col in columns] for r in range(part.num_rows)]


class _Converted:
    """An answer's first rows as cells (JSON-ready) and text lines, converted a chunk at
    a time as they are asked for: a 5,000-row answer of which 25 rows fit converts a
    chunk, not every row, and nothing is converted twice. A chunk of large rows is
    shorter: 256 rows of 200 KB blobs took 300 MB to show one."""

    CHUNK = 256

    def __init__(self, table: pa.Table) -> None:
        self._table = table
        self.total: int = min(table.num_rows, CONVERT_ROWS)  # rows ever converted, at most
        self._kinds = [field.type for field in table.schema]
        # any chunk of it is small (its buffers, sliced ones whole: at least its bytes)
        self._small = table.get_total_buffer_size() <= SLICE_BYTES
        self.cells: list[list[Any]] = []
        self.lines: list[str] = []

    def upto(self, count: int) -> int:
        """Convert the first ``count`` rows (as many as there are); how many there are."""
        while len(self.cells) < min(count, self.total):
            start = len(self.cells)
            chunk = min(self.CHUNK, self.total - start)
            if not self._small:  # fewer rows where they are large (about SLICE_BYTES)
                ahead = self._table.slice(start, chunk)
                chunk = next(row_slices(ahead, SLICE_BYTES, self.CHUNK)).num_rows
            whole = _whole_rows(self._table, start, chunk)
            cells = [[_cell_of(v) for v in row] for row in whole]
            lines = text_lines(cells, self._kinds, whole)
            self.cells.extend(cells)
            self.lines.extend(lines)
        return min(count, len(self.cells))


def _all_fit(
    rows: _Converted, count: int, sizes: Callable[[int], tuple[int, int]], limit: int
) -> bool:
    """Whether all ``count`` rows of the answer fit within ``limit``. A few rows are built
    and measured at once; past a chunk, the rows' own sizes are summed onto the output
    without rows first (one small build, not a build per guess), so an answer that is far
    over converts only the rows up to where it went over, and one near the limit is
    measured whole."""
    if count > rows.total:
        return False  # more rows than are ever converted: they never fit
    if count > _Converted.CHUNK:
        json_total, text_total = sizes(0)
        for index in range(count):
            rows.upto(index + 1)
            json_total += len(dumps(rows.cells[index])) + (1 if index else 0)  # and a comma
            text_total += len(rows.lines[index]) + 1
            if max(json_total, text_total) > limit + _SLACK:
                return False
    rows.upto(count)
    return max(sizes(count)) <= limit


# Characters the sum of rows' sizes may be off by (the counts the output writes, and the
# words for a cut that an output of every row has not got): near the limit, measured.
_SLACK = 200


def _tsv(value: Any) -> str:
    return nested_text(value).replace("\t", " ").replace("\n", " ")


def text_lines(
    rows: list[list[Any]], kinds: list[pa.DataType], whole: list[list[Any]] | None = None
) -> list[str]:
    """One tab-separated line per row of cells, each value as DuckDB writes it (the CLI's
    table and CSV write the same): ``2024-01-01 10:11:12``, ``true``, ``{a=1}``. A cell
    shortened for the view is shortened here from its whole value in ``whole`` (the same
    rows, none shortened) as DuckDB writes it, not from its JSON form: a list, struct or
    map reads as it does whole (``{'a': ...``, ``{k=...``), and ``…(+N chars)`` counts
    what ``CAST(column AS VARCHAR)`` holds past the cut."""
    lines = []
    for index, row in enumerate(display_rows(rows, kinds)):
        cut = [i for i, value in enumerate(row) if isinstance(value, Shortened)]
        if cut and whole is not None and any(not isinstance(whole[index][i], str) for i in cut):
            written = display_rows([whole[index]], kinds)[0]
            row = [shortened(nested_text(written[i])) if i in cut else v for i, v in enumerate(row)]
        lines.append("\t".join(_tsv(v) for v in row))
    return lines


def summarise(table: pa.Table) -> list[ColumnSummary]:
    out = []
    for field in list(table.schema)[:SUMMARY_COLUMNS]:
        column = table.column(field.name)
        summary = ColumnSummary(name=field.name, type=str(field.type), nulls=column.null_count)
        try:
            summary.distinct = pc.count_distinct(column).as_py()
            bounds = pc.min_max(column)
            summary.min = _short(bounds["min"], field.type)
            summary.max = _short(bounds["max"], field.type)
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
            pass
        out.append(summary)
    return out


def _short(bound: pa.Scalar, kind: pa.DataType) -> str | None:
    """A column's min or max as DuckDB writes it, cut at 80 characters."""
    value = json_value(scalar_value(bound))
    if value is None:
        return None
    text = nested_text(display_column([value], kind)[0])
    return text if len(text) <= 80 else text[:80] + "…"


def present(
    answer: Answer,
    backend: Backend,
    *,
    explicit: bool,
    output: type[QueryOutput] = QueryOutput,
    **fields: Any,
) -> tuple[QueryOutput, str]:
    """The tool output for ``answer`` within the budget, and its text block."""
    limit = budget(explicit)
    table = answer.table
    all_columns = columns_of(table)
    shown_columns = fit(
        len(all_columns),
        lambda k: len(dumps([c.model_dump() for c in all_columns[:k]])) * 2,
        limit // 2,
    )
    narrow = table.select(list(range(shown_columns)))
    rows = _Converted(narrow)
    base: dict[str, Any] = {
        "columns": all_columns[:shown_columns],
        "row_count": table.num_rows,
        "total_rows": answer.total_rows,
        "notes": answer.notes,
        "bytes_scanned": answer.bytes_scanned,
        "bytes_billed": answer.bytes_billed,
        "remaining_budget_bytes": answer.remaining_budget_bytes,
        "sql": answer.sql,
        "provenance": answer.provenance,
        # the query's own caps, as the REST answer and the CLI's JSON give them
        "reason": answer.reason if answer.truncated else None,
        "row_limit": answer.row_limit,
        "row_limit_source": answer.row_limit_source,
        "byte_limit": answer.byte_limit,
        **fields,
    }

    names = [c.name for c in all_columns[:shown_columns]]
    built: dict[tuple[int, bool], tuple[QueryOutput, str]] = {}

    def build(count: int, extra: dict[str, Any]) -> tuple[QueryOutput, str]:
        key = (count, bool(extra))
        if key not in built:
            model = output(
                **{**base, **extra},
                rows=rows.cells[:count],
                shown_rows=count,
                truncated="truncation" in extra,
            )
            built[key] = (model, _text(model, names, rows.lines[:count], len(all_columns)))
        return built[key]

    def sizes(count: int, extra: dict[str, Any]) -> tuple[int, int]:
        model, text = build(count, extra)
        return len(dumps(model.model_dump(mode="json"))), len(text)

    def measured(count: int, extra: dict[str, Any]) -> int:
        return max(sizes(count, extra))

    # every row, or (below) the first rows that fit beside a handle to the whole answer
    count = table.num_rows if _all_fit(rows, table.num_rows, lambda k: sizes(k, {}), limit) else 0
    extra: dict[str, Any] = {}
    columns_cut = (
        f"Only the first {shown_columns} of {len(all_columns)} columns fit here; select the "
        "columns you need."
        if shown_columns < len(all_columns)
        else None
    )
    if count < table.num_rows:
        handle = backend.keep_result(table, answer)
        query_it = (
            f"query it (SELECT ... FROM {handle} with WHERE, GROUP BY or LIMIT/OFFSET) instead "
            "of re-running the query."
        )
        if answer.truncated and answer.truncation is not None:
            # The query's own limit cut the answer first: say so, and what the handle holds.
            reason = answer.truncation.reason
            how = (
                f"{answer.truncation.how_to_get_more} The {table.num_rows:,} rows fetched (not "
                f"the whole answer) are kept as {handle}: {query_it}"
            )
        else:
            reason = "characters"
            how = (
                f"All {table.num_rows:,} rows of the answer are kept as {handle}; only the "
                f"first rows fit here: {query_it}"
            )
        if columns_cut:
            how += f" {columns_cut}"
        extra = {
            "result_handle": handle,
            "summary": summarise(table),
            "truncation": Truncation(reason=reason, how_to_get_more=how),
        }
        if len(all_columns) > SUMMARY_COLUMNS:
            extra["notes"] = [
                *answer.notes,
                f"The column stats cover the first {SUMMARY_COLUMNS} of {len(all_columns)} "
                "columns.",
            ]
        count = fit(rows.upto(FIRST_ROWS), lambda k: measured(k, extra), limit)
        if count == 0 and table.num_rows:
            how += (
                " Not one row fits here with these columns: select fewer or narrower ones, "
                f"or read them from {handle} in parts."
            )
            extra["truncation"] = Truncation(reason=reason, how_to_get_more=how)
            built.clear()
    elif columns_cut or answer.truncated:
        said: list[str] = []
        reason = "columns"
        if answer.truncated:
            query_cut = answer.truncation or truncation_for(
                answer.reason,
                table.num_rows,
                answer.row_limit_source,
                answer.total_rows,
                answer.byte_limit,
            )
            reason, said = query_cut.reason, [query_cut.how_to_get_more]
        if columns_cut:
            said.append(columns_cut)
        if columns_cut:  # columns not here: kept, to be read with SQL, not run again
            extra["result_handle"] = backend.keep_result(table, answer)
            said.append(
                f"The whole answer is kept as {extra['result_handle']}: query it for the "
                "other columns (SELECT the ones you need FROM it)."
            )
        extra["truncation"] = Truncation(reason=reason, how_to_get_more=" ".join(said))
    built.clear()  # the truncation reason may have changed since measuring
    cut = _shortened(rows.cells[:count])
    if cut:  # values shortened for the view: said, with how to read them whole
        extra = _values_cut(extra, [names[int(i)] for i in cut], answer, backend)
        built.clear()
        count = fit(count, lambda k: measured(k, extra), limit)
    return build(count, extra)


def _values_cut(
    extra: dict[str, Any], columns: list[str], answer: Answer, backend: Backend
) -> dict[str, Any]:
    """``extra`` saying that values of ``columns`` are shortened here: the truncation when
    nothing else cut the answer (the answer is kept under a handle to read them from),
    else a note beside the truncation that did."""
    handle = extra.get("result_handle") or backend.keep_result(answer.table, answer)
    first = f"CAST({quote_ident(columns[0])} AS VARCHAR)"  # lists, structs, blobs too
    said = (
        f"Values longer than {CELL_CHARS} characters are shortened here (in column"
        f"{'s' if len(columns) > 1 else ''} {', '.join(columns)}), each ending in …(+N chars); "
        f"the values are kept whole in {handle}: read one in parts with "
        f"SELECT substr({first}, {CELL_CHARS + 1}, {CELL_CHARS}) FROM {handle}, "
        f"or its length with length({first})."
    )
    if "truncation" in extra:
        notes = extra.get("notes", answer.notes)
        return {**extra, "result_handle": handle, "notes": [*notes, said]}
    return {
        **extra,
        "result_handle": handle,
        "truncation": Truncation(reason="values", how_to_get_more=said),
    }


def _text(model: QueryOutput, names: list[str], lines: list[str], total_columns: int) -> str:
    p = model.provenance
    shown = (
        f" (the first {model.shown_rows:,} shown below)"
        if model.shown_rows < model.row_count
        else ""
    )
    head = " · ".join(
        [
            f"{_rows_said(model)} x {counted(total_columns, 'column')}{shown}",
            p.engine,
            *cost_said(model.bytes_scanned, model.remaining_budget_bytes, model.bytes_billed),
            f"{p.duration_ms:g} ms",
        ]
    )
    parts = [head]
    if model.sql:
        parts.append(f"SQL: {model.sql}")
    parts.append("\n".join(["\t".join(names), *lines]))
    if model.truncation is not None:
        parts.append(f"[truncated ({model.truncation.reason}): {model.truncation.how_to_get_more}]")
    parts.extend(f"Note: {note}" for note in model.notes)
    if model.summary:
        stats = "; ".join(
            f"{s.name}: nulls {s.nulls}, distinct {s.distinct}, {s.min}..{s.max}"
            for s in model.summary
        )
        parts.append(f"Column stats: {stats}")
    return "\n".join(parts)


def _rows_said(model: QueryOutput) -> str:
    if (
        not model.truncated
        or model.truncation is None
        or model.truncation.reason
        in (
            "characters",
            "columns",
            "values",
        )
    ):
        return rows_said(model.row_count)
    if model.total_rows is not None:
        return f"{model.row_count:,} of {rows_said(model.total_rows)}"
    return f"{rows_said(model.row_count)} (more exist)"
