"""A query's answer in a notebook: Arrow, pandas or polars, and an honest HTML view.

``Result`` holds exactly what the MCP tools and the CLI get back (an ``Answer``): the rows,
whether a limit cut them and how to get the rest, and where they came from. Its HTML says
how many rows the answer has and how many are shown (the view shows at most
:data:`VIEW_ROWS`, and values past ``CELL_CHARS`` cut as the MCP tools cut them; the data
itself is all in ``.arrow()`` / ``.df()``), and ends with the provenance line; its plain
``repr`` says the same in text, the same rows tab-separated.
"""

from __future__ import annotations

import datetime as dt
import html
import warnings
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pyarrow as pa

from agnes_mcp.mcp_server.output_budget import CELL_CHARS, Shortened, shortened
from agnes_mcp.notebook.calendar_values import beyond_python, calendar_objects
from agnes_mcp.rails.answer_text import cut_sentence
from agnes_mcp.rails.results import Answer, Provenance, Truncation, text_rows
from agnes_mcp.rails.value_text import time_text
from agnes_sync.printable import printable

VIEW_ROWS = 50  # rows an HTML view shows; the Result holds every row it was given
LIMIT_FLAG = "limit"
EXTRA_HINT = (
    "Install the notebook extra: pip install 'agnes[notebook]' (or uv add 'agnes[notebook]')."
)


def decimal_as_float(column: pa.ChunkedArray, scale: int) -> pa.ChunkedArray:
    """Decimals as the nearest doubles, as ``float(Decimal)`` gives them. Arrow's own cast
    multiplies by ``10**-scale`` and is off in the last digit for about one value in seven
    (``2280.97`` becomes ``2280.9700000000003``); an integer divided by a power of ten is
    rounded once, correctly. Values too wide for that go through their text."""
    import pyarrow.compute as pc

    try:
        shift = pa.scalar(Decimal(10) ** scale, pa.decimal128(scale + 1, 0))
        unscaled = pc.multiply(column, shift).cast(pa.int64())
        if (pc.max(pc.abs(unscaled)).as_py() or 0) < 2**53:
            return pc.divide(unscaled.cast(pa.float64()), float(10**scale))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    return column.cast(pa.string()).cast(pa.float64())


def decimal_rounded(column: pa.ChunkedArray, floats: pa.ChunkedArray) -> bool:
    """Whether a value of ``column`` (a DECIMAL) is not what its float64 in ``floats``
    reads back as at the column's scale: more digits than a double holds
    (``12345678901234567.89`` reads back ``12345678901234568.00``)."""
    import pyarrow.compute as pc

    try:
        back = floats.cast(column.type, safe=False)  # rounded to the scale, correctly
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return True
    return pc.all(pc.equal(column, back)).as_py() is False


MICROS_A_DAY = 86_400_000_000


def interval_as_duration(column: pa.ChunkedArray) -> pa.Array:
    """INTERVAL values (Arrow's month-day-nano) as microsecond durations, as DuckDB's own
    ``.df()`` makes them ``timedelta64[us]``: a month counts 30 days; inside lists,
    structs and maps too (DuckDB's ``.df()`` has ``timedelta`` there). pandas would
    otherwise hold them as ``DateOffset`` objects and polars refuses the type (nested, it
    panics)."""
    return pa.array([_micros(value) for value in column.to_pylist()], _durations_for(column.type))


def _micros(value: Any) -> Any:
    """``value`` (Python, from ``to_pylist``) with each interval in it as microseconds."""
    if isinstance(value, pa.MonthDayNano):
        months, days, nanoseconds = value
        return (months * 30 + days) * MICROS_A_DAY + int(nanoseconds / 1000)
    if isinstance(value, dict):
        return {key: _micros(item) for key, item in value.items()}
    if isinstance(value, tuple):  # a map's (key, value) pair
        return tuple(_micros(item) for item in value)
    if isinstance(value, list):
        return [_micros(item) for item in value]
    return value


def _holds(kind: pa.DataType, test: Callable[[pa.DataType], bool]) -> bool:
    """Whether ``kind`` is, or holds at any depth, a type ``test`` accepts."""
    return test(kind) or any(_holds(kind.field(i).type, test) for i in range(kind.num_fields))


def _durations_for(kind: pa.DataType) -> pa.DataType:
    """``kind`` with every interval in it a microsecond duration."""
    if pa.types.is_interval(kind):
        return pa.duration("us")
    if pa.types.is_map(kind):
        return pa.map_(_durations_for(kind.key_type), _durations_for(kind.item_type))
    if pa.types.is_struct(kind):
        return pa.struct([f.with_type(_durations_for(f.type)) for f in kind])
    if pa.types.is_fixed_size_list(kind):
        field = kind.value_field
        return pa.list_(field.with_type(_durations_for(field.type)), kind.list_size)
    if pa.types.is_large_list(kind):
        return pa.large_list(kind.value_field.with_type(_durations_for(kind.value_type)))
    if pa.types.is_list(kind):
        return pa.list_(kind.value_field.with_type(_durations_for(kind.value_type)))
    return kind


def with_durations(table: pa.Table) -> pa.Table:
    """``table`` with each column holding INTERVALs (nested too) as
    :func:`interval_as_duration` makes it."""
    for index, field in enumerate(table.schema):
        if _holds(field.type, pa.types.is_interval):
            durations = interval_as_duration(table.column(index))
            table = table.set_column(index, pa.field(field.name, durations.type), durations)
    return table


def time_objects(array: pa.Array) -> list[Any]:
    """The values of ``array`` (a TIME column, or one holding TIMEs) as Python objects,
    each TIME a ``datetime.time`` and the ``24:00:00`` Python has no time for its text,
    as DuckDB's own ``.df()`` has them (Arrow's conversion raised ``hour must be in
    0..23`` for the whole frame)."""
    kind = array.type
    if pa.types.is_time(kind):
        per = 10 ** {"s": 0, "ms": 3, "us": 6, "ns": 9}[kind.unit]
        return [
            None
            if ticks is None
            else time_text(ticks, kind.unit)
            if ticks >= 86_400 * per
            else (dt.datetime.min + dt.timedelta(microseconds=ticks * 1_000_000 // per)).time()
            for ticks in array.cast(pa.int64()).to_pylist()
        ]
    if not _holds(kind, pa.types.is_time):
        return list(array.to_pylist())
    valid = array.is_valid().to_pylist()
    if pa.types.is_struct(kind):
        fields = {f.name: time_objects(array.field(i)) for i, f in enumerate(kind)}
        return [
            {name: values[row] for name, values in fields.items()} if valid[row] else None
            for row in range(len(array))
        ]
    if pa.types.is_map(kind):
        pairs = list(zip(time_objects(array.keys), time_objects(array.items), strict=True))
    else:
        pairs = time_objects(array.flatten())
    if pa.types.is_fixed_size_list(kind):
        size = kind.list_size
        starts = [size * row for row in range(len(array) + 1)]
    else:
        offsets = array.offsets.to_pylist()
        starts = [offset - offsets[0] for offset in offsets]
    return [
        pairs[starts[row] : starts[row + 1]] if valid[row] else None for row in range(len(array))
    ]


def _past_midnight(array: pa.Array) -> bool:
    """Whether ``array`` holds, at any depth, a TIME of 24:00:00 (DuckDB's end of day,
    which neither Python's time nor polars' Time can hold)."""
    import pyarrow.compute as pc

    kind = array.type
    if pa.types.is_time(kind):
        per = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[kind.unit]
        latest = pc.max(array.cast(pa.int64())).as_py()
        return latest is not None and latest >= 86_400 * per
    if pa.types.is_struct(kind):
        return any(_past_midnight(array.field(i)) for i in range(kind.num_fields))
    if pa.types.is_map(kind):
        return _past_midnight(array.keys) or _past_midnight(array.items)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _past_midnight(array.flatten())
    return False


# pandas' nullable types, which DuckDB's own ``.df()`` gives an integer or BOOLEAN column
# holding a NULL: Arrow's ``to_pandas`` makes such an integer column float64, which
# silently changes every integer past 2**53 (a BIGINT id), and a BOOLEAN one objects.
_NULLABLE = {
    pa.int8(): "Int8",
    pa.int16(): "Int16",
    pa.int32(): "Int32",
    pa.int64(): "Int64",
    pa.uint8(): "UInt8",
    pa.uint16(): "UInt16",
    pa.uint32(): "UInt32",
    pa.uint64(): "UInt64",
    pa.bool_(): "boolean",
}


def _enums_ordered(frame: Any, table: pa.Table) -> None:
    """A DuckDB ENUM (Arrow's dictionary, which arrives unordered) as an ordered
    categorical, in its declared order, as DuckDB's own ``.df()`` has it: on an unordered
    one ``frame["size"].max()`` or ``frame["size"] > "s"`` raise TypeError."""
    for index, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            frame.isetitem(index, frame.iloc[:, index].cat.as_ordered())


def _to_pandas(table: pa.Table) -> Any:
    """``table`` as pandas, a MAP as a dict (as DuckDB's own ``.df()`` has it; Arrow's
    default is a list of pairs, on which ``row["m"]["key"]`` fails); every map of the
    result stays pairs when one's keys are lists or structs, which no dict can hold. A
    DATE inside a STRUCT or MAP is a ``date``, as there (Arrow made it a ``datetime``,
    which equals no ``date``: ``row["s"]["d"] == date(2024, 1, 2)`` was False)."""
    frame = _converted(table, dates_as_objects=False)
    for index, field in enumerate(table.schema):
        if (pa.types.is_struct(field.type) or pa.types.is_map(field.type)) and _holds(
            field.type, pa.types.is_date
        ):
            column = _converted(table.select([index]), dates_as_objects=True)
            frame.isetitem(index, column.iloc[:, 0])
    return frame


def _converted(table: pa.Table, *, dates_as_objects: bool) -> Any:
    """Arrow's ``to_pandas``, integers holding a NULL kept as Python ints at any depth (a
    LIST of BIGINT with a NULL was a float64 array, an id past 2**53 another number);
    top-level ones then become pandas' nullable types (:func:`_with_nulls_kept`)."""
    options: dict[str, Any] = {"date_as_object": dates_as_objects, "integer_object_nulls": True}
    if not any(_holds(field.type, pa.types.is_map) for field in table.schema):
        return table.to_pandas(**options)
    try:
        return table.to_pandas(**options, maps_as_pydicts="strict")
    except TypeError:  # unhashable keys
        return table.to_pandas(**options)


def _with_nulls_kept(frame: Any, table: pa.Table, pd: Any) -> None:
    """Give ``frame``'s integer and BOOLEAN columns that hold a NULL pandas' nullable
    types (in place; columns by position, so repeated names are each their own)."""

    def nullable(kind: pa.DataType) -> Any:
        name = _NULLABLE.get(kind)
        return pd.api.types.pandas_dtype(name) if name else None

    for index, field in enumerate(table.schema):
        if field.type in _NULLABLE and table.column(index).null_count:
            frame.isetitem(index, table.column(index).to_pandas(types_mapper=nullable))


def _beyond_python(table: pa.Table) -> dict[str, list[Any]]:
    """The DATE and TIMESTAMP columns holding a value Python has no date for, as objects
    (:mod:`agnes_mcp.notebook.calendar_values`)."""
    return {
        field.name: calendar_objects(table.column(index))
        for index, field in enumerate(table.schema)
        if beyond_python(table.column(index))
    }


def union_values(column: pa.ChunkedArray) -> list[Any]:
    """A column holding a UNION (DuckDB's ``union_value(num := 2)``, at any depth) as
    Python objects, each union the value of the member it holds, as DuckDB's own ``.df()``
    has it: pandas and polars have no union type, and raised for the whole frame."""
    return list(column.to_pylist())


class TruncatedResultWarning(UserWarning):
    """The rows taken out of a :class:`Result` (``.df()``, ``.pl()``, ``.arrow()``) are
    not the whole answer: a limit cut them. Its text names the limit and how to get the
    rest; ``warnings.simplefilter("ignore", TruncatedResultWarning)`` silences it."""


class RoundedValuesWarning(UserWarning):
    """``.df()`` gave DECIMAL values as float64 (as DuckDB's own ``.df()`` does), and some
    hold more digits than a float64: they were rounded. Its text names the columns, as
    does the frame's ``attrs["agnes"]["rounded_columns"]``; ``.arrow()`` and ``.pl()``
    keep the exact decimals."""


class PullIncompleteWarning(UserWarning):
    """``ws.pull()`` left files it could not fetch (each keeps its previous good copy):
    the summary it returns lists them, and this says so where a cell shows no summary.
    ``warnings.simplefilter("ignore", PullIncompleteWarning)`` silences it."""


class MissingExtra(ImportError):
    """An optional package (pandas, polars) is not installed."""


def _need(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError as exc:
        raise MissingExtra(f"{module} is not installed. {EXTRA_HINT}") from exc


def provenance_text(provenance: Provenance, bytes_scanned: int) -> str:
    """One line: which tables (mode, freshness), the engine, bytes scanned, time."""
    tables = ", ".join(
        f"{t.id} ({t.query_mode}"
        + (f", as of {t.freshness:%Y-%m-%d %H:%M} UTC" if t.freshness else "")
        + ")"
        for t in provenance.tables
    )
    return (
        f"from {tables or 'no table'} · {provenance.engine} · {bytes_scanned:,} bytes scanned "
        f"· {provenance.duration_ms:g} ms"
    )


class Result:
    """What a query, ``describe`` or a metric returned."""

    def __init__(self, answer: Answer, sql: str | None, limit_flag: str = LIMIT_FLAG) -> None:
        self._answer = answer
        self.sql = answer.sql or sql
        self._limit_flag = limit_flag  # how the caller sets the row limit, for the cut

    # --- the data ---------------------------------------------------------------------

    # Rows taken out of a cut Result no longer show its counts and cut sentence, so each
    # way out warns (TruncatedResultWarning) and a pandas frame keeps them in .attrs.

    def arrow(self) -> pa.Table:
        """The rows as a pyarrow Table; a cut result warns (:class:`TruncatedResultWarning`)."""
        self._warn_if_cut()
        return self._answer.table

    def df(self) -> Any:
        """The rows as a pandas DataFrame (needs the ``notebook`` extra), typed as DuckDB's
        own ``.df()`` types them: dates and timestamps as ``datetime64``, decimals as
        ``float64`` (``.arrow()`` keeps the exact decimals; a value with more digits than a
        float64 holds is rounded, and :class:`RoundedValuesWarning` names its column), an
        integer or BOOLEAN column holding a NULL as pandas' nullable ``Int64``/``boolean``,
        intervals as ``timedelta64[us]`` (a month as 30 days). A cut result warns
        (:class:`TruncatedResultWarning`) and its frame's ``attrs["agnes"]`` says so."""
        pd = _need("pandas")
        self._warn_if_cut()
        table = with_durations(self._answer.table)
        rounded = []
        for index, field in enumerate(table.schema):
            if pa.types.is_decimal(field.type):
                floats = decimal_as_float(table.column(index), field.type.scale)
                if decimal_rounded(table.column(index), floats):
                    rounded.append(field.name)
                table = table.set_column(index, pa.field(field.name, pa.float64()), floats)
        if rounded:  # stacklevel 2: the notebook line that asked for the frame
            warnings.warn(
                f"{', '.join(rounded)}: DECIMAL values with more digits than a float64 "
                "holds were rounded in this DataFrame; .arrow() and .pl() keep them exact.",
                RoundedValuesWarning,
                stacklevel=2,
            )
        objects = {
            field.name: union_values(table.column(index))
            if _holds(field.type, pa.types.is_union)
            else time_objects(table.column(index).combine_chunks())
            for index, field in enumerate(table.schema)
            if _holds(field.type, pa.types.is_union) or _holds(field.type, pa.types.is_time)
        }
        objects |= _beyond_python(table)  # infinity is no date: never shown as one
        frame = _to_pandas(table.drop_columns(list(objects)))
        for name, values in objects.items():  # in their places, as objects
            frame.insert(table.column_names.index(name), name, pd.Series(values, dtype=object))
        _with_nulls_kept(frame, table, pd)
        _enums_ordered(frame, table)
        frame.attrs["agnes"] = {
            "truncated": self.truncated,
            "row_count": self.row_count,
            "total_rows": self.total_rows,
            "cut": self.cut,
            "rounded_columns": rounded,
        }
        return frame

    def pl(self) -> Any:
        """The rows as a polars DataFrame (needs the ``notebook`` extra), intervals as
        ``Duration("us")`` (a month as 30 days, as ``.df()`` has them; polars has no interval
        type), a column holding a UNION as ``Object`` values (:func:`union_values`), a
        TIME column holding 24:00:00 (which polars' Time would make null) as ``Object``
        values as ``.df()`` has them, and so a DATE or TIMESTAMP column holding a value
        Python has no date for (``infinity``: :mod:`~agnes_mcp.notebook.calendar_values`);
        a cut result warns (:class:`TruncatedResultWarning`)."""
        polars = _need("polars")
        self._warn_if_cut()
        table = with_durations(self._answer.table)
        objects = {
            f.name: union_values(table.column(f.name))
            for f in table.schema
            if _holds(f.type, pa.types.is_union)  # polars has no union type
        }
        for field in table.schema:
            if field.name not in objects and _holds(field.type, pa.types.is_time):
                column = table.column(field.name).combine_chunks()
                if _past_midnight(column):  # a 24:00:00 polars' Time would make null
                    objects[field.name] = time_objects(column)
        objects |= _beyond_python(table)  # polars panics on them
        frame = polars.from_arrow(table.drop_columns(list(objects)))
        # In their places, each value as an object: left to right, so each place exists
        # (the unions were found first; a 24:00 TIME left of one had no place yet).
        for name in sorted(objects, key=table.column_names.index):
            series = polars.Series(name, objects[name], dtype=polars.Object)
            frame.insert_column(table.column_names.index(name), series)
        return frame

    def _warn_if_cut(self) -> None:
        cut = self.cut
        if cut is not None:  # stacklevel 3: the notebook line that asked for the rows
            warnings.warn(
                f"{self._counts()}, not the whole answer: {cut}",
                TruncatedResultWarning,
                stacklevel=3,
            )

    # --- what is said about it --------------------------------------------------------

    @property
    def answer(self) -> Answer:
        return self._answer

    @property
    def provenance(self) -> Provenance:
        return self._answer.provenance

    @property
    def row_count(self) -> int:
        return self._answer.row_count

    @property
    def total_rows(self) -> int | None:
        return self._answer.total_rows

    @property
    def truncated(self) -> bool:
        return self._answer.truncated

    @property
    def truncation(self) -> Truncation | None:
        return self._answer.truncation

    @property
    def cut(self) -> str | None:
        """Why these rows are not the whole answer and how to get the rest; None if whole."""
        return cut_sentence(self._answer, self._limit_flag)

    @property
    def bytes_scanned(self) -> int:
        return self._answer.bytes_scanned

    @property
    def notes(self) -> list[str]:
        return list(self._answer.notes)

    def __len__(self) -> int:
        return self._answer.row_count

    def _counts(self) -> str:
        rows = self.row_count
        said = f"{rows:,} row" if rows == 1 else f"{rows:,} rows"
        if self.truncated:
            total = self.total_rows
            if total is not None and total > rows:
                return f"{rows:,} of {total:,} rows"
            return f"{said} (more exist)"  # as the tools say it: "2 rows (more exist)"
        return said

    def _view_rows(self) -> tuple[list[list[str | None]], bool]:
        """The rows a view shows (at most ``VIEW_ROWS``), each value as DuckDB writes it
        (never Python's repr) and shortened past ``CELL_CHARS``; whether any was."""
        rows = [
            [None if value is None else shortened(value) for value in row]
            for row in text_rows(self._answer.table.slice(0, VIEW_ROWS))
        ]
        return rows, any(isinstance(text, Shortened) for row in rows for text in row)

    def _view_said(self, cut_values: bool, frame: str) -> list[str]:
        """What a view says about the rows it leaves out or shortens."""
        said = []
        if self._answer.table.num_rows > VIEW_ROWS:
            said.append(
                f"this view shows the first {VIEW_ROWS} of the "
                f"{self._answer.table.num_rows:,} rows returned; all of them are in {frame}"
            )
        if cut_values:
            said.append(
                f"values longer than {CELL_CHARS} characters are shortened in this view "
                f"(…(+N chars)); {frame} hold them whole"
            )
        return said

    def __repr__(self) -> str:
        rows, cut_values = self._view_rows()
        lines = [f"<Result: {self._counts()}>"]
        if self.cut:
            lines.append(f"truncated: {self.cut}")
        lines.extend(f"note: {note}" for note in self.notes)
        lines.append("\t".join(self._answer.table.column_names))
        lines.extend(
            "\t".join(
                "NULL" if text is None else text.replace("\t", " ").replace("\n", " ")
                for text in row
            )
            for row in rows
        )
        lines.extend(f"({said})" for said in self._view_said(cut_values, ".df() / .arrow()"))
        lines.append(provenance_text(self.provenance, self.bytes_scanned))
        return printable("\n".join(lines))  # a value's escape codes never reach a terminal

    def _repr_html_(self) -> str:
        table = self._answer.table
        header = "".join(f"<th>{html.escape(name)}</th>" for name in table.column_names)
        rows, cut_values = self._view_rows()
        body = []
        for texts in rows:
            cells = "".join(
                f"<td>{'<i>null</i>' if text is None else html.escape(text)}</td>" for text in texts
            )
            body.append(f"<tr>{cells}</tr>")
        parts = [f"<div class='agnes-result'><p><strong>{self._counts()}</strong>"]
        frame = "<code>.df()</code> / <code>.arrow()</code>"
        parts.extend(f" · {said}" for said in self._view_said(cut_values, frame))
        parts.append("</p>")
        if self.cut:
            parts.append(f"<p class='agnes-truncated'>⚠ Truncated: {html.escape(self.cut)}</p>")
        parts.extend(f"<p class='agnes-note'>{html.escape(note)}</p>" for note in self.notes)
        parts.append(
            f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        )
        parts.append(
            "<p class='agnes-provenance'><small>"
            f"{html.escape(provenance_text(self.provenance, self.bytes_scanned))}</small></p>"
        )
        parts.append("</div>")
        return "".join(parts)
