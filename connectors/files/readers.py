"""Building the DuckDB reader expression for a set of files and explaining its errors."""

from __future__ import annotations

import csv
import gzip
import itertools
import re
from dataclasses import replace
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from agnes_sync.errors import (
    SourceDataError,
    SourceTableNotFound,
    TerminalSyncError,
    TransientSyncError,
)
from agnes_sync.sql_text import quote_ident, quote_literal
from agnes_sync.wide_decimals import text_schema
from connectors.files import long_numbers
from connectors.files.options import FileTableOptions
from connectors.files.sniffing import Sniffed

_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
}
_COMPRESSED = (".gz", ".zst")


def detect_format(path: Path) -> str | None:
    suffixes = [s for s in path.suffixes if s not in _COMPRESSED]
    return _FORMATS.get(suffixes[-1].lower()) if suffixes else None


def reader_sql(
    files: list[Path], options: FileTableOptions, types: dict[str, str] | None = None
) -> str:
    """``read_csv(...)`` / ``read_parquet(...)`` / ``read_json(...)`` over exactly ``files``;
    ``types``: CSV columns typed otherwise than the sniffer would."""
    listing = "[" + ", ".join(quote_literal(str(f)) for f in files) + "]"
    kind = options.format if options.format != "auto" else (detect_format(files[0]) or "csv")
    if kind == "parquet":
        return f"read_parquet({listing}, union_by_name = true)"
    if kind in ("json", "ndjson"):
        fmt = "newline_delimited" if kind == "ndjson" else "auto"
        args = [f"format = '{fmt}'"]
        if options.columns:
            args.append("columns = " + _struct(options.columns))
        return f"read_json({listing}, {', '.join(args)})"
    args = csv_args(kind, options, len(files)) + ([f"types = {_struct(types)}"] if types else [])
    return f"read_csv({listing}{''.join(', ' + a for a in args)})"


def csv_kind(files: list[Path], options: FileTableOptions) -> str | None:
    """``csv`` or ``tsv`` when ``files`` are read as delimited text, else None."""
    kind = options.format if options.format != "auto" else (detect_format(files[0]) or "csv")
    return kind if kind in ("csv", "tsv") else None


def csv_args(kind: str, options: FileTableOptions, files: int = 1) -> list[str]:
    """``read_csv``'s arguments for the table's options (the sniffer's too), over ``files``."""
    args = dialect_args(kind, options)
    if options.null_string is not None:
        args.append(f"nullstr = {quote_literal(options.null_string)}")
    if options.skip_rows is not None:
        args.append(f"skip = {int(options.skip_rows)}")
    if options.date_format is not None:
        args.append(f"dateformat = {quote_literal(options.date_format)}")
    if options.timestamp_format is not None:
        args.append(f"timestampformat = {quote_literal(options.timestamp_format)}")
    if options.columns:
        args.append("columns = " + _struct(options.columns))
        if files > 1 and options.quote is None and options.escape is None:
            # Without union_by_name, DuckDB reads every file of a glob with the dialect it
            # sniffed in the first: a first file with no quoted field made the quote ''
            # for all, so a later file's "" was read as the text '""' and "x,y" split
            # into two fields. CSV's own quote and escape, unless the options say others.
            args += ["quote = '\"'", "escape = '\"'"]
    elif files > 1:
        # Files of a glob are matched by column name, as parquet's are: an export that
        # gained or lost a column is NULL where a file lacks it. DuckDB otherwise took the
        # first file's columns, dropping a column a later file added without a word, and
        # refused a file lacking one ("Schema mismatch between globbed files").
        args.append("union_by_name = true")
    # An empty field is NULL, a quoted empty one ("") the empty string, as Keboola's
    # exports and PostgreSQL's CSV read them (DuckDB's default reads both as NULL).
    args.append("allow_quoted_nulls = false")
    return args


def sniffed_reader_sql(file: Path, options: FileTableOptions, sniffed: Sniffed) -> str:
    """``read_csv(...)`` over one file as ``sniffed`` found it: binding it reads no data."""
    args = [
        quote_literal(str(file)),
        *sniffed.reader_args(),
        *unsniffed_args(file, options, sniffed),
    ]
    return f"read_csv({', '.join(args)})"


def sniffed_files_sql(
    read: list[tuple[Path, Sniffed]], options: FileTableOptions, types: dict[str, str]
) -> str:
    """A query over each of the files of ``read`` as it was sniffed (binding it reads no
    data), their columns matched by name, as ``union_by_name`` matches them, and typed
    ``types`` where named (the type that keeps every file's values)."""
    return " UNION ALL BY NAME ".join(
        "SELECT * FROM "
        + sniffed_reader_sql(
            file,
            options,
            replace(sniffed, columns=tuple((n, types.get(n, k)) for n, k in sniffed.columns)),
        )
        for file, sniffed in read
    )


def unsniffed_args(file: Path, options: FileTableOptions, sniffed: Sniffed) -> list[str]:
    """The reader's arguments for the table's options that ``sniffed`` does not state."""
    kind = csv_kind([file], options) or "csv"
    stated = {a.split(" = ", 1)[0] for a in sniffed.reader_args()}
    return [a for a in csv_args(kind, options) if a.split(" = ", 1)[0] not in stated]


def dialect_args(kind: str, options: FileTableOptions) -> list[str]:
    """The CSV dialect the options fix (the sniffer infers the rest): the reader's and the
    sniffer's arguments alike."""
    args = []
    delimiter = options.delimiter or ("\t" if kind == "tsv" else None)
    if delimiter is not None:
        args.append(f"delim = {quote_literal(delimiter)}")
    if options.header is not None:
        args.append(f"header = {str(options.header).lower()}")
    if options.quote is not None:
        args.append(f"quote = {quote_literal(options.quote)}")
    if options.escape is not None:
        args.append(f"escape = {quote_literal(options.escape)}")
    if options.encoding is not None:
        args.append(f"encoding = {quote_literal(options.encoding)}")
    if options.max_line_size is not None:
        args.append(f"max_line_size = {int(options.max_line_size)}")
    return args


def _struct(columns: dict[str, str]) -> str:
    return (
        "{" + ", ".join(f"{quote_literal(k)}: {quote_literal(v)}" for k, v in columns.items()) + "}"
    )


_LINE = re.compile(r"(?:CSV Error on Line|line)[: ]+(\d+)", re.IGNORECASE)
_FILE = re.compile(r"\bfile = (.+)")
# DuckDB appends the statement it ran, from "LINE <n>:" of the *SQL*, to every error
# about it: that is where in our query the reader was called, not a line of the data.
_SQL_CONTEXT = re.compile(r"\n\s*\nLINE \d+:.*", re.DOTALL)
_TYPE_HINT = "Fix the file, or set the column's type or null_string in the table's source options."
_FILE_HINT = "Fix or replace the file; the previous data stays served until a sync succeeds."


def explain(error: duckdb.Error, files: list[Path]) -> TerminalSyncError | TransientSyncError:
    """A DuckDB reader error as a sync error that names the file and line when DuckDB knows."""
    text = _SQL_CONTEXT.sub("", str(error)).strip()
    if isinstance(error, duckdb.IOException) and "lock" in text.lower():
        return TransientSyncError(f"A source file is locked: {text.splitlines()[0]}")
    if isinstance(error, duckdb.IOException) and (
        "No such file" in text or "No files found" in text
    ):
        return SourceTableNotFound(
            f"Source file(s) vanished during the sync: {text.splitlines()[0]}"
        )
    line = _LINE.search(text)
    file_match = _FILE.search(text)
    named = next((str(f) for f in files if str(f) in text.splitlines()[0]), None)
    where = (
        file_match[1].strip()
        if file_match
        else named or (str(files[0]) if len(files) == 1 else "the source files")
    )
    # A CSV error's first line only says where ("CSV Error on Line: 4"), its problem is
    # below; any other error (a binder's, a cast's) says it on its first line.
    detail = text.splitlines()[0]
    if "CSV Error on Line" in detail:
        detail = next(
            (
                ln.strip()
                for ln in text.splitlines()[1:]
                if ln.strip() and not ln.startswith("Original Line")
            ),
            detail,
        )
    if "not utf-8 encoded" in text:
        return SourceDataError(
            f"{where} is not UTF-8 text"
            + (f" (first seen near line {line[1]})" if line else "")
            + ": nothing was published.",
            hint="Set the table's 'encoding' source option (utf-16, latin-1), or convert the "
            "file to UTF-8. The previous data stays served until a sync succeeds.",
            details={"file": where, "line": int(line[1]) if line else None},
        )
    at = f"{where}, line {line[1]}" if line else where
    original = re.search(r"Original Line: (.*)", text)
    message = f"Malformed data in {at}: {detail}"
    if original:
        message += f" (the line reads: {original[1][:200]})"
    hint = _TYPE_HINT if "convert" in text.lower() else _FILE_HINT
    if "Maximum line size" in text:
        hint = (
            "A line longer than DuckDB reads by default (a long text field): set the table's "
            "max_line_size source option (bytes) above it. " + _FILE_HINT
        )
    return SourceDataError(
        message,
        hint=hint,
        details={"file": where, "line": int(line[1]) if line else None},
    )


# Delimiters a real CSV is split by. When no delimiter splits every line into the same
# number of fields (a file cut short mid-copy, an unterminated quote), DuckDB's sniffer
# settles on one the file does not hold and reads each whole line as one text column.
_DELIMITERS = (",", ";", "\t", "|")


def unsplit_csv_error(
    con: duckdb.DuckDBPyConnection, files: list[Path], options: FileTableOptions, sniffed: Sniffed
) -> SourceDataError | None:
    """The error for a CSV the sniffer could not split (``None`` when it could): its one
    column is named by a whole header line holding a delimiter. Reading it again with that
    delimiter and the header's columns gives the reader's own error, naming the line."""
    if options.delimiter is not None or options.columns or len(sniffed.columns) != 1:
        return None
    header = sniffed.columns[0][0]
    delimiter = next((d for d in _DELIMITERS if d in header), None)
    if delimiter is None:
        return None
    names = next(csv.reader([header], delimiter=delimiter))
    strict = options.model_copy(
        update={
            "delimiter": delimiter,
            "header": True,
            "quote": options.quote or '"',
            "escape": options.escape or '"',
            # named by position: a header's own names may repeat or be empty, and
            # DuckDB would refuse those (or count them short) before reading a line
            "columns": {f"column{i}": "VARCHAR" for i in range(len(names))},
        }
    )
    reader = reader_sql(files, strict).removesuffix(")") + ", auto_detect = false)"
    try:
        con.execute(f"SELECT count(*) FROM {reader}").fetchall()
    except duckdb.Error as exc:
        explained = explain(exc, files)
        if isinstance(explained, SourceDataError):
            return explained
    return SourceDataError(
        f"The CSV data in {', '.join(str(f) for f in files[:3])} does not split into the same "
        f"columns on every line (its header reads {header[:200]!r}): a file cut short or "
        "still being written?",
        hint=f"{_FILE_HINT} A file whose delimiter is truly absent: set 'delimiter'.",
        details={"file": str(files[0]), "line": None},
    )


def skipped_lines_error(
    file: Path, options: FileTableOptions, sniffed: Sniffed
) -> SourceDataError | None:
    """The error for a CSV whose reader would drop leading lines the table's options do
    not say to skip (``None`` when it would not). DuckDB's sniffer skips lines it takes for
    a preamble: a report title, but also every line before one split another way (``1,a``,
    ``2,b``, ``3;c`` reads as the one row ``3, c``), and the sync would publish what is left
    as the whole table. Blank lines are skipped quietly, as a reader would."""
    skipped, split_by = sniffed.skip_rows, sniffed.delimiter
    if options.skip_rows is not None or not skipped or _blank_lines(file, skipped):
        return None
    return SourceDataError(
        f"The CSV reader would skip the first {skipped:,} line(s) of {file} and read the "
        f"rest as split by {split_by!r} (the sniffer took those lines for a preamble). Nothing "
        "was published: read so, the table would lose them without a word.",
        hint="If those lines are a title or a note before the data, set skip_rows to "
        f"{skipped} in the table's source options; if they are data, the file is malformed "
        "(a line split another way, or cut short): fix or replace it. The previous data "
        "stays served until a sync succeeds.",
        details={"file": str(file), "line": None, "skipped_lines": skipped},
    )


def empty_files_error(files: list[Path], options: FileTableOptions) -> SourceDataError | None:
    """The error for text files that hold nothing at all (``None`` when one holds
    something). DuckDB reads an empty CSV as a table of one text column ``column0`` (an
    empty JSON file as one column ``json``) and the sync would publish that over the
    table: a file truncated to be written again, or still being copied, would replace the
    data with no rows and a column that was never in the file."""
    kind = options.format if options.format != "auto" else (detect_format(files[0]) or "csv")
    if kind == "parquet" or not all(_empty(f) for f in files):
        return None
    named = ", ".join(str(f) for f in files[:3]) + (" ..." if len(files) > 3 else "")
    return SourceDataError(
        f"{named} {'is' if len(files) == 1 else 'are'} empty: there are no columns to read, "
        "and nothing was published.",
        hint="A file still being written or copied: sync again once it is complete. An "
        "export of no rows should still hold its header line. The previous data stays "
        "served until a sync succeeds.",
        details={"file": str(files[0]), "line": None},
    )


def with_content(files: list[Path]) -> list[Path]:
    """``files`` without the empty text files (all of them when every one is empty, for
    :func:`empty_files_error` to name). An empty CSV or JSON file holds no rows, and read
    beside others matched by name it would add a column ``column0`` that no file holds. An
    empty parquet file is no parquet at all (one still being copied): it stays, for the
    reader to refuse, so a glob is never published without its rows."""
    return [f for f in files if detect_format(f) == "parquet" or not _empty(f)] or files


EXACT_PARQUET = "__agnes_exact_parquet"


def wide_parquet_decimals(
    files: list[Path], options: FileTableOptions
) -> tuple[pa.Schema, list[str]]:
    """The parquet files' columns merged by name, their decimals wider than DuckDB's
    DECIMAL(38) as text, and those columns named (none: ``[]``). Read from the files'
    footers, never their rows; a file that is no parquet is left to the reader to refuse."""
    kind = options.format if options.format != "auto" else (detect_format(files[0]) or "csv")
    if kind != "parquet":
        return pa.schema([]), []
    try:
        merged = pa.unify_schemas([pq.read_schema(f) for f in files])
    except (pa.ArrowException, OSError):
        return pa.schema([]), []
    return text_schema(merged)


def exact_parquet_sql(
    con: duckdb.DuckDBPyConnection, files: list[Path], options: FileTableOptions
) -> str | None:
    """The source's SQL when its parquet holds columns DuckDB's parquet reader reads
    otherwise than they were written (None when not), read through Arrow instead:

    - decimals wider than DuckDB's DECIMAL(38), which it reads as DOUBLE (about 16
      significant digits): as their exact text;
    - Arrow durations (stored as plain integers of their unit, the unit in Arrow's own
      schema), which it read as BIGINT (``90000``, of milliseconds, said nowhere): as
      INTERVAL."""
    schema, wide = wide_parquet_decimals(files, options)
    if not wide and not any(pa.types.is_duration(field.type) for field in schema):
        return None
    con.register(EXACT_PARQUET, ds.dataset([str(f) for f in files], schema=schema))
    return f"SELECT * FROM {EXACT_PARQUET}"


def exact_json_sql(
    con: duckdb.DuckDBPyConnection, files: list[Path], options: FileTableOptions
) -> tuple[str | None, dict[str, str]]:
    """The source's SQL when its JSON holds integers a DOUBLE would round (None when not),
    and those columns' exact types. DuckDB reads an integer past UBIGINT's range
    (``123456789012345678901234567890``) as a DOUBLE, which kept ``1.2345678901234568e+29``
    without a word; read as text, its digits are all there, and the column is read as the
    DECIMAL that holds them (:mod:`connectors.files.long_numbers`). A fraction's text
    reads back as its DOUBLE already: those are not told apart here."""
    kind = options.format if options.format != "auto" else (detect_format(files[0]) or "csv")
    if kind not in ("json", "ndjson") or options.columns:
        return None, {}
    found = con.execute(f"DESCRIBE SELECT * FROM {reader_sql(files, options)}").fetchall()
    described = {str(row[0]): str(row[1]) for row in found}
    doubles = [name for name, kind in described.items() if kind == long_numbers.DOUBLE]
    if not doubles:
        return None, {}
    as_text = options.model_copy(update={"columns": described | dict.fromkeys(doubles, "VARCHAR")})
    source = reader_sql(files, as_text)
    longest = ", ".join(long_numbers.longest_sql(n) for n in doubles)
    row = con.execute(f"SELECT {longest} FROM {source}").fetchone() or ()
    long = [
        n
        for n, most in zip(doubles, row, strict=False)
        if most is not None and most > long_numbers.DOUBLE_DIGITS
    ]
    exact = long_numbers.exact_types(con, source, long)
    if not exact:
        return None, {}
    typed = options.model_copy(update={"columns": described | exact})
    return f"SELECT * FROM {reader_sql(files, typed)}", exact


def empty_files_note(matched: list[Path], read: list[Path]) -> str | None:
    """What the sync says of the empty text files of a glob it left out (None when none
    was): each holds no rows, and may be a file still being written or copied, whose rows
    the published table then lacks until a later sync."""
    kept = set(read)
    empty = [f for f in matched if f not in kept]
    if not empty:
        return None
    named = ", ".join(f.name for f in empty[:5]) + (
        f" (+{len(empty) - 5} more)" if len(empty) > 5 else ""
    )
    return (
        f"{len(empty)} empty {'file' if len(empty) == 1 else 'files'} of the glob left out "
        f"(no header line, no rows): {named}; one still being written is read by the next sync"
    )


def without_blank_lines(sql: str, names: set[tuple[str, ...]], options: FileTableOptions) -> str:
    """``sql`` without the rows blank lines make in CSV files of one column. DuckDB skips a
    blank line in a file of several columns (and in one of one column read with a
    ``null_string``), but reads it as a row holding NULL in a file of one column: a list
    that ends in two line breaks gained a NULL row. A blank line is never a row here; in a
    one-column file without a ``null_string``, NULL comes from a blank line alone (an
    empty quoted field ``""`` is the empty string), so those are the rows left out."""
    if options.null_string is not None or len(names) != 1:
        return sql
    (columns,) = names
    if len(columns) != 1:
        return sql
    return f"SELECT * FROM ({sql}) WHERE {quote_ident(columns[0])} IS NOT NULL"


def _empty(path: Path) -> bool:
    """Whether ``path`` holds no bytes (decompressed, for gzip); False when it cannot tell."""
    try:
        if path.stat().st_size == 0:
            return True
        if path.suffix.lower() == ".gz":
            with gzip.open(path, "rb") as content:
                return content.read(1) == b""
    except (OSError, EOFError):
        return False
    return False


def _blank_lines(path: Path, count: int) -> bool:
    """Whether the first ``count`` lines of ``path`` are all blank (False when it cannot
    tell: a compression it does not open here)."""
    suffix = path.suffix.lower()
    if suffix not in (".gz", *_FORMATS):
        return False
    opener = gzip.open if suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as lines:
            return all(not line.strip() for line in itertools.islice(lines, count))
    except OSError:
        return False
