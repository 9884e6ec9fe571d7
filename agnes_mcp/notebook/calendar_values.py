"""DATE and TIMESTAMP columns holding a value Python's ``datetime`` cannot: ``infinity``,
``-infinity``, years before 1 or after 9999 (DuckDB's calendar reaches 5,881,580).

pandas shows ``infinity`` as the date 5881580-07-11 (Arrow hands it over as the largest
day number), polars panics on it (``out-of-range date``, a ``PanicException`` when the
frame is shown), and DuckDB's own ``.df()`` refuses the whole result. Such a column comes
out of ``.df()`` and ``.pl()`` as objects, as a TIME of 24:00:00 does: each value a
``datetime.date`` / ``datetime.datetime`` where Python has one, else DuckDB's own text
(``infinity``, ``12000-01-01``). Top-level columns; inside lists and structs the values
stay as Arrow's conversion makes them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from agnes_mcp.rails.value_text import date_text, timestamp_text

_EPOCH_DAY = dt.date(1970, 1, 1)
_FIRST_DAY = (dt.date.min - _EPOCH_DAY).days  # 0001-01-01
_LAST_DAY = (dt.date.max - _EPOCH_DAY).days  # 9999-12-31
_PER_DAY = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}


def _is_calendar(kind: pa.DataType) -> bool:
    return bool(pa.types.is_date32(kind) or pa.types.is_timestamp(kind))


def beyond_python(column: pa.ChunkedArray) -> bool:
    """Whether a DATE or TIMESTAMP column holds a value Python's datetime cannot."""
    kind = column.type
    if not _is_calendar(kind) or column.null_count == len(column):
        return False
    ticks = column.cast(pa.int32() if pa.types.is_date32(kind) else pa.int64())
    bounds = pc.min_max(ticks).as_py()
    per_day = 1 if pa.types.is_date32(kind) else _PER_DAY[kind.unit]
    return bool(bounds["min"] < _FIRST_DAY * per_day or bounds["max"] >= (_LAST_DAY + 1) * per_day)


def calendar_objects(column: pa.ChunkedArray) -> list[Any]:
    """The values of a DATE or TIMESTAMP column as Python objects, DuckDB's text for those
    Python has none for."""
    kind = column.type
    if pa.types.is_date32(kind):
        return [
            None
            if days is None
            else _EPOCH_DAY + dt.timedelta(days=days)
            if _FIRST_DAY <= days <= _LAST_DAY
            else date_text(days)
            for days in column.cast(pa.int32()).to_pylist()
        ]
    per_day = _PER_DAY[kind.unit]
    start = dt.datetime(1970, 1, 1, tzinfo=dt.UTC if kind.tz is not None else None)
    out: list[Any] = []
    for ticks in column.cast(pa.int64()).to_pylist():
        if ticks is None:
            out.append(None)
        elif _FIRST_DAY * per_day <= ticks < (_LAST_DAY + 1) * per_day:
            micros = ticks * _PER_DAY["us"] // per_day  # nanoseconds cut, as Python has none
            out.append(start + dt.timedelta(microseconds=micros))
        else:
            out.append(timestamp_text(ticks, kind.unit, kind.tz))
    return out
