"""One look at a CSV file: DuckDB's sniffer run once, and a reader that does not sniff again.

``read_csv`` with auto-detection sniffs the file each time a query over it is bound: the
checks before a sync (a preamble the reader would skip, a file it cannot split), the
strategies' DESCRIBEs and the COPY each sniffed it again (~20 ms each on a 45 MB file, a
third of a bare COPY's time). The sync sniffs a file once here, with the table's options,
and reads it with what was found stated (``auto_detect = false``): the reader DuckDB's own
``sniff_csv`` prompt gives, built here from its fields with every value quoted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import duckdb

from agnes_sync.sql_text import quote_ident, quote_literal
from connectors.files import long_numbers

# How sniff_csv shows a dialect character that is not set (no quote, no comment).
_UNSET = "(empty)"

# The date format DuckDB's sniffer names for ISO dates (2024-01-31). Its own reader then
# reads the column with DuckDB's date cast, not with that format: the cast also takes a
# later row's 2024/01/31 or 2024-01-31 10:00:00, which the format stated refused (the
# sync failed where ``read_csv`` reads the file), and it parses faster (~3 ms a million
# rows). So it is not stated; a format of the table's options still is.
_ISO_DATE = "%Y-%m-%d"


@dataclass(frozen=True)
class Sniffed:
    """What DuckDB's CSV sniffer found in one file, read with the table's options."""

    delimiter: str
    quote: str
    escape: str
    new_line: str
    comment: str
    skip_rows: int
    has_header: bool
    columns: tuple[tuple[str, str], ...]
    date_format: str | None
    timestamp_format: str | None

    def reader_args(self) -> list[str]:
        """The arguments that make ``read_csv`` read the file as sniffed, without sniffing."""
        args = [
            "auto_detect = false",
            f"delim = {quote_literal(self.delimiter)}",
            f"quote = {quote_literal(self.quote)}",
            f"escape = {quote_literal(self.escape)}",
            f"comment = {quote_literal(self.comment)}",
            f"skip = {int(self.skip_rows)}",
            f"header = {str(self.has_header).lower()}",
            "columns = {"
            + ", ".join(f"{quote_literal(n)}: {quote_literal(t)}" for n, t in self.columns)
            + "}",
        ]
        if self.new_line:  # a one-line file has none to state
            args.append(f"new_line = {quote_literal(self.new_line)}")
        if self.date_format is not None:
            args.append(f"dateformat = {quote_literal(self.date_format)}")
        if self.timestamp_format is not None:
            args.append(f"timestampformat = {quote_literal(self.timestamp_format)}")
        return args


def sniff(con: duckdb.DuckDBPyConnection, file: Path, args: list[str]) -> Sniffed:
    """Sniff ``file`` with the reader's ``args`` (its dialect, null string, encoding...),
    through a buffer just longer than a line may be (:func:`_buffer_args`)."""
    row = con.execute(
        "SELECT Delimiter, Quote, Escape, NewLineDelimiter, Comment, SkipRows, HasHeader, "
        "Columns, DateFormat, TimestampFormat "
        f"FROM sniff_csv({', '.join([quote_literal(str(file)), *args, *_buffer_args(args)])})"
    ).fetchone()
    if row is None:  # sniff_csv answers one row, or raises
        raise duckdb.InvalidInputException(f"The CSV sniffer found nothing in {file}.")
    delimiter, quote, escape, new_line, comment, skip, header, columns, dates, stamps = row
    return Sniffed(
        delimiter=_set(delimiter),
        quote=_set(quote),
        escape=_set(escape),
        new_line=_set(new_line),
        comment=_set(comment),
        skip_rows=int(skip),
        has_header=bool(header),
        columns=tuple((str(c["name"]), str(c["type"])) for c in columns),
        date_format=None if dates == _ISO_DATE else dates,
        timestamp_format=stamps,
    )


def _set(value: object) -> str:
    text = "" if value is None else str(value)
    return "" if text == _UNSET else text


# The timestamp types DuckDB's sniffer gives (microseconds), and their nanosecond twins.
_FINER = {"TIMESTAMP": "TIMESTAMP_NS", "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ_NS"}


# The rows looked at for digits a column's sniffed type would drop: the sniffer's sample.
SAMPLE_ROWS = 20_480


# DuckDB's longest line when the options do not say (its buffers must be longer).
_MAX_LINE_SIZE = 2_000_000


def _buffer_args(args: list[str]) -> list[str]:
    """A buffer just longer than a line may be (``max_line_size`` in ``args``, else
    DuckDB's default, then stated: a buffer given alone sets the longest line to its own
    size), for a read of the first rows only. DuckDB's default buffer holds 16 lines'
    worth (~32 MB): the sniffer read that much of a large file for its 20,480 rows (~8 ms
    of a 45 MB file's sync) and goes on to the next buffer when the rows need more."""
    given = [a.split(" = ", 1)[1] for a in args if a.startswith("max_line_size = ")]
    longest = int(given[0]) if given else _MAX_LINE_SIZE
    stated = [] if given else [f"max_line_size = {longest}"]
    return [*stated, f"buffer_size = {longest + 1}"]


def _sample_args(extra_args: list[str]) -> list[str]:
    """A reader of the first rows that reads little more than them: one thread and one
    buffer just longer than a line may be (the default, 16 lines' worth on two threads,
    read ~64 MB of a large file for 20,480 rows: ~10 ms, three times the rows' own)."""
    return ["parallel = false", *_buffer_args(extra_args)]


def with_exact_types(
    con: duckdb.DuckDBPyConnection, file: Path, sniffed: Sniffed, extra_args: list[str]
) -> Sniffed:
    """``sniffed`` with each column typed to keep what its text holds, where DuckDB's
    sniffer would lose part of it without a word:

    - a timestamp column whose text carries digits past the microsecond
      (``22:13:20.123456789``): ``TIMESTAMP_NS`` (the sniffer's ``TIMESTAMP`` drops the
      last three digits);
    - a DOUBLE column holding a number of more than 15 significant digits: the DECIMAL
      that holds every value, or its exact text (:mod:`connectors.files.long_numbers`).

    Looked for in the sniffer's own sample, the first :data:`SAMPLE_ROWS` rows, those
    columns read as text (the digits of a DOUBLE column are counted only when a value is
    longer than 15 characters). Every row was read for a while: one more read of the
    whole file, as long as the sync's own (the files connector's extract fell from 0.92x
    to 0.70x a bare COPY), for a value first met past the sample; docs/sync.md names the
    limit."""
    stamps = [name for name, kind in sniffed.columns if kind in _FINER]
    doubles = [name for name, kind in sniffed.columns if kind == long_numbers.DOUBLE]
    if not stamps and not doubles:
        return sniffed
    checked = {*stamps, *doubles}
    as_text = replace(
        sniffed,
        columns=tuple((n, "VARCHAR" if n in checked else k) for n, k in sniffed.columns),
        date_format=None,
        timestamp_format=None,
    )
    reader = ", ".join(
        [quote_literal(str(file)), *as_text.reader_args(), *extra_args, *_sample_args(extra_args)]
    )
    finer = {name: _FINER[kind] for name, kind in sniffed.columns if name in stamps}
    checks = [
        f"bool_or(epoch_ns(TRY_CAST({quote_ident(n)} AS {finer[n]})) % 1000 <> 0)" for n in stamps
    ] + [long_numbers.longest_sql(n) for n in doubles]
    sample = f"(SELECT * FROM read_csv({reader}) LIMIT {SAMPLE_ROWS})"
    row = con.execute(f"SELECT {', '.join(checks)} FROM {sample}").fetchone() or ()
    typed = {n: finer[n] for n, fine in zip(stamps, row, strict=False) if fine}
    long = [
        n
        for n, longest in zip(doubles, row[len(stamps) :], strict=False)
        if longest is not None and longest > long_numbers.DOUBLE_DIGITS
    ]
    typed |= long_numbers.exact_types(con, sample, long)
    if not typed:
        return sniffed
    return replace(sniffed, columns=tuple((n, typed.get(n, k)) for n, k in sniffed.columns))
