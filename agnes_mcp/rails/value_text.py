"""Values written as DuckDB prints them, where Python's own conversion would not.

DuckDB's DATE and TIMESTAMP types reach years Python's ``datetime`` does not (before
year 1, after 9999) and hold ``infinity`` and ``-infinity``; its TIME holds 24:00:00.
Arrow carries them as plain integers, so a result is never refused or mangled for
holding one: these render the integers directly (proleptic Gregorian calendar, years
before 1 as ``(BC)``), and everything else keeps its usual ISO form.

An INTERVAL reaches Python as Arrow's (months, days, nanoseconds) and a BLOB as bytes,
which JSON cannot hold: both are written as DuckDB's ``::VARCHAR`` writes them
(``3 days 11:22:46.472209``, ``1 year 2 months``; ``\x00a``), in every output alike.
"""

from __future__ import annotations

import re
import struct
from decimal import Context, Decimal
from typing import Any

import pyarrow as pa

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def civil(days: int) -> tuple[int, int, int]:
    """(year, month, day) of ``days`` since 1970-01-01 (H. Hinnant's civil_from_days)."""
    z = days + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + 1 if m <= 2 else y), m, d


def date_text(days: int) -> str:
    if days >= INT32_MAX:
        return "infinity"
    if days <= -INT32_MAX:
        return "-infinity"
    year, month, day = civil(days)
    if year <= 0:
        return f"{1 - year:04d}-{month:02d}-{day:02d} (BC)"
    return f"{year:04d}-{month:02d}-{day:02d}"


def time_text(ticks: int, unit: str) -> str:
    per = _PER_SECOND[unit]
    seconds, fraction = divmod(ticks, per)
    hours, rest = divmod(seconds, 3600)
    minutes, second = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{second:02d}"
    if fraction:
        digits = len(str(per)) - 1
        text += "." + f"{fraction:0{digits}d}".rstrip("0")
    return text


def timestamp_text(ticks: int, unit: str, tz: str | None) -> str:
    if ticks >= INT64_MAX:
        return "infinity"
    if ticks <= -INT64_MAX:
        return "-infinity"
    per_day = 86_400 * _PER_SECOND[unit]
    days, within = divmod(ticks, per_day)
    day = date_text(days)
    bc = day.endswith(" (BC)")
    text = f"{day.removesuffix(' (BC)')} {time_text(within, unit)}"
    if tz is not None:
        text += "+00"
    return text + (" (BC)" if bc else "")


def interval_text(months: int, days: int, nanoseconds: int) -> str:
    """An interval as DuckDB prints it: years and months (whole years of the months,
    toward zero), days, then the time of day (hours unbounded), 00:00:00 when all zero."""
    parts: list[str] = []
    years = abs(months) // 12 * (-1 if months < 0 else 1)
    for amount, unit in ((years, "year"), (months - years * 12, "month"), (days, "day")):
        if amount:
            parts.append(f"{amount} {unit}{'' if abs(amount) == 1 else 's'}")
    if nanoseconds or not parts:
        sign = "-" if nanoseconds < 0 else ""
        seconds, fraction = divmod(abs(nanoseconds), 1_000_000_000)
        hours, rest = divmod(seconds, 3600)
        minutes, second = divmod(rest, 60)
        text = f"{sign}{hours:02d}:{minutes:02d}:{second:02d}"
        if fraction:
            text += "." + f"{fraction:09d}".rstrip("0")
        parts.append(text)
    return " ".join(parts)


def blob_text(value: bytes) -> str:
    """Bytes as DuckDB prints a BLOB: printable ASCII as itself, every other byte (and
    the backslash and quotes) as ``\\xHH``."""
    return "".join(chr(b) if 32 <= b <= 126 and b not in _ESCAPED else f"\\x{b:02X}" for b in value)


_ESCAPED = frozenset(b"\\'\"")


def render(array: pa.Array) -> list[Any]:
    """Python values of ``array`` where it holds temporal values Python cannot (dates and
    timestamps as DuckDB prints them), nested lists, structs and maps included."""
    kind = array.type
    if pa.types.is_date32(kind):
        raw = array.cast(pa.int32())
        return [None if v is None else date_text(v) for v in raw.to_pylist()]
    if pa.types.is_date64(kind):
        raw = array.cast(pa.int64())
        return [None if v is None else date_text(v // 86_400_000) for v in raw.to_pylist()]
    if pa.types.is_timestamp(kind):
        raw = array.cast(pa.int64())
        return [
            None if v is None else timestamp_text(v, kind.unit, kind.tz) for v in raw.to_pylist()
        ]
    if pa.types.is_time(kind):
        raw = array.cast(pa.int64())
        return [None if v is None else time_text(v, kind.unit) for v in raw.to_pylist()]
    if pa.types.is_interval(kind):
        return [
            None if v is None else interval_text(v.months, v.days, v.nanoseconds)
            for v in array.to_pylist()
        ]
    if _is_blob(kind):
        return [None if v is None else blob_text(v) for v in array.to_pylist()]
    if pa.types.is_struct(kind):
        fields = [render(array.field(i)) for i in range(kind.num_fields)]
        names = [kind.field(i).name for i in range(kind.num_fields)]
        valid = array.is_valid().to_pylist()
        return [
            dict(zip(names, (f[row] for f in fields), strict=True)) if valid[row] else None
            for row in range(len(array))
        ]
    if pa.types.is_map(kind):
        keys, items = render(array.keys), render(array.items)
        return _split(array, list(zip(keys, items, strict=True)))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _split(array, render(array.flatten()))
    return list(array.to_pylist())


def _split(array: pa.Array, flat: list[Any]) -> list[Any]:
    """Regroup the flattened values of a list-like ``array`` into its rows."""
    valid = array.is_valid().to_pylist()
    if pa.types.is_fixed_size_list(array.type):
        size = array.type.list_size
        out: list[Any] = []
        position = 0
        for row in range(len(array)):
            out.append(flat[position : position + size] if valid[row] else None)
            position += size if valid[row] else 0
        return out
    offsets = array.offsets.to_pylist()
    base = offsets[0]
    return [
        flat[offsets[row] - base : offsets[row + 1] - base] if valid[row] else None
        for row in range(len(array))
    ]


def has_temporal(kind: pa.DataType) -> bool:
    if (
        pa.types.is_temporal(kind)
        and not pa.types.is_duration(kind)
        and not pa.types.is_interval(kind)
    ):
        return True
    return any(has_temporal(kind.field(i).type) for i in range(kind.num_fields))


def values_of(column: pa.Array | pa.ChunkedArray) -> list[Any]:
    """Python values of ``column``: Arrow's own conversion where it holds, the renderings
    above where a value is out of Python's range (or a TIME that Python would wrap)."""
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks == 0:  # an empty answer: combine_chunks() cannot build one
            return []  # of a UNION type ("ArrowNotImplementedError: sparse_union")
        array = column.combine_chunks()
    else:
        array = column
    if _always_rendered(array.type):
        # Nanosecond timestamps: Arrow answers pandas.Timestamp when pandas is installed
        # (and refuses otherwise), so they are always rendered here, the same either way.
        return render(array)
    if has_temporal(array.type):
        try:
            return list(array.to_pylist())
        except (OverflowError, ValueError):
            return render(array)
    return list(array.to_pylist())


def scalar_value(scalar: pa.Scalar) -> Any:
    """One Arrow scalar as Python, like :func:`values_of`."""
    return values_of(pa.array([scalar], type=scalar.type))[0]


def _is_blob(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_fixed_size_binary(kind)
    )


def _always_rendered(kind: pa.DataType) -> bool:
    """Types Python's conversion never gives as DuckDB prints them (TIME, which Python
    would wrap at 24:00:00; nanosecond timestamps; intervals; blobs), nested too."""
    if (
        pa.types.is_time(kind)
        or (pa.types.is_timestamp(kind) and kind.unit == "ns")
        or pa.types.is_interval(kind)
        or _is_blob(kind)
    ):
        return True
    return any(_always_rendered(kind.field(i).type) for i in range(kind.num_fields))


class MapText(list):  # type: ignore[type-arg]
    """A MAP's (key, value) pairs, which :func:`nested_text` writes as DuckDB does
    (``{a=1, b=2}``); JSON keeps them a list of pairs."""


def nested_text(value: Any, inner: bool = False) -> str:
    """A list, struct or map (of JSON-ready values) written as DuckDB's ``::VARCHAR``
    writes it (``[1 day, NULL]``, ``{'k': v, 'n': 1}``, ``{a=1}``), for the outputs that
    are text: a CSV cell, a line of an MCP answer. A plain value is its own text; inside
    a list, struct or map a text is quoted where DuckDB quotes it (``['a,b', c]``), so
    ``'a,b'`` and ``a``, ``b`` (or ``'NULL'`` and NULL) do not read alike."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, MapText):
        return (
            "{"
            + ", ".join(f"{nested_text(k, True)}={nested_text(v, True)}" for k, v in value)
            + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(nested_text(v, True) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{_quoted(str(k))}: {nested_text(v, True)}" for k, v in value.items())
            + "}"
        )
    text = str(value)
    return _quoted(text) if inner and _needs_quotes(text) else text


_QUOTED_IF_IN = frozenset("\"'()[]{},:=\\")


def _needs_quotes(text: str) -> bool:
    """Whether DuckDB quotes ``text`` inside a list, struct or map: empty, spaces around
    it, a character of its nested syntax, or the word NULL."""
    return (
        not text
        or text != text.strip()
        or not _QUOTED_IF_IN.isdisjoint(text)
        or text.upper() == "NULL"
    )


def _quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


_ISO_TIMESTAMP = re.compile(
    r"(?P<day>-?\d{4,}-\d{2}-\d{2})T(?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d+))?"
    r"(?P<offset>[+-]\d{2}:\d{2})?"
)


def _duckdb_timestamp(text: str) -> str:
    """An ISO timestamp (Python's ``isoformat``) as DuckDB writes it: a space for ``T``,
    no trailing zeros in the fraction, a whole-hour offset as ``+00``."""
    found = _ISO_TIMESTAMP.fullmatch(text)
    if found is None:
        return text  # already DuckDB's (infinity, years past 9999, nanoseconds)
    fraction = (found["fraction"] or "").rstrip("0")
    said = f"{found['day']} {found['time']}" + (f".{fraction}" if fraction else "")
    offset = found["offset"]
    if offset:
        said += offset[:3] if offset.endswith(":00") else offset
    return said


def display_column(values: list[Any], kind: pa.DataType) -> list[Any]:
    """A column's JSON-ready values as the text outputs (a CLI table, CSV) show them: as
    DuckDB writes them where JSON's form differs (``2024-01-01 10:11:12`` for
    ``2024-01-01T10:11:12``; a DECIMAL(10,2) ``1.10``, not ``1.1``); other values as
    they are."""
    if pa.types.is_decimal(kind):
        step = Decimal(1).scaleb(-kind.scale)
        exact = Context(prec=kind.precision + kind.scale + 2)  # 38 digits pass the default 28
        return [
            v if v is None else str(Decimal(str(v)).quantize(step, context=exact)) for v in values
        ]
    if pa.types.is_timestamp(kind):
        return [_duckdb_timestamp(v) if isinstance(v, str) else v for v in values]
    if pa.types.is_float32(kind):
        return [_float32_text(v) if isinstance(v, float) else v for v in values]
    if pa.types.is_struct(kind):
        fields = {kind.field(i).name: kind.field(i).type for i in range(kind.num_fields)}
        return [
            {
                k: display_column([item], fields[k])[0] if k in fields else item
                for k, item in v.items()
            }
            if isinstance(v, dict)
            else v
            for v in values
        ]
    if pa.types.is_map(kind):
        return [
            MapText(
                (display_column([k], kind.key_type)[0], display_column([item], kind.item_type)[0])
                for k, item in v
            )
            if isinstance(v, list)
            else v
            for v in values
        ]
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return [
            v if not isinstance(v, list) else display_column(v, kind.value_type) for v in values
        ]
    return values


def display_rows(rows: list[list[Any]], kinds: list[pa.DataType]) -> list[list[Any]]:
    """``rows`` (JSON-ready values, one column per kind) with each column as
    :func:`display_column` shows it: the one text form of an answer's values, for every
    output that is text (a CLI table and CSV, a notebook's HTML table, an MCP answer's
    lines)."""
    columns = [display_column([row[i] for row in rows], kind) for i, kind in enumerate(kinds)]
    return [list(row) for row in zip(*columns, strict=True)] if columns else [[] for _ in rows]


def _float32_text(value: float) -> str:
    """A FLOAT (single precision) in the fewest digits that read back as it, as DuckDB
    writes it (``0.1``, not the double ``0.10000000149011612``)."""
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    single = struct.pack("<f", value)
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if struct.pack("<f", float(text)) == single:
            return repr(float(text))
    return repr(value)
