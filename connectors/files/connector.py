"""The files connector: CSV, TSV, parquet and JSON/NDJSON files or globs under one folder."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, cast

import duckdb

from agnes_sync import strategies
from agnes_sync.connector import Capability, Column, Connector, SourceTable, TableRequest
from agnes_sync.contract import ExtractWriter, PublishedTable
from agnes_sync.errors import InvalidTableSpec, SourceTableNotFound
from agnes_sync.wide_decimals import as_text_note
from connectors.files.long_numbers import DOUBLE, exact_types, retyped_note
from connectors.files.options import FilesOptions, FileTableOptions
from connectors.files.readers import (
    csv_args,
    csv_kind,
    detect_format,
    dialect_args,
    empty_files_error,
    empty_files_note,
    exact_json_sql,
    exact_parquet_sql,
    explain,
    reader_sql,
    skipped_lines_error,
    sniffed_files_sql,
    sniffed_reader_sql,
    unsniffed_args,
    unsplit_csv_error,
    wide_parquet_decimals,
    with_content,
    without_blank_lines,
)
from connectors.files.sniffing import Sniffed, sniff, with_exact_types


class FilesConnector(Connector):
    name = "files"
    description = "CSV, TSV, parquet and JSON files from a local folder (the embedded default)."
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.FULL_REFRESH, Capability.INCREMENTAL, Capability.PARTITIONED}
    )
    Options = FilesOptions
    TableOptions = FileTableOptions

    @property
    def root(self) -> Path:
        return self.context.resolve(cast(FilesOptions, self.options).path).resolve()

    def readable_directories(self) -> tuple[Path, ...]:
        return (self.root,)

    def list_tables(self) -> list[SourceTable]:
        if not self.root.is_dir():
            raise SourceTableNotFound(
                f"The folder {self.root} of source '{self.context.name}' does not exist."
            )
        found = []
        for path in sorted(p for p in self.root.rglob("*") if self._readable(p)):
            relative = path.relative_to(self.root)
            bucket = str(relative.parent) if relative.parent != Path() else None
            stem = path.name.split(".", 1)[0].lower().replace("-", "_").replace(" ", "_")
            found.append(SourceTable(source_table=path.name, bucket=bucket, suggested_id=stem))
        return found

    def _readable(self, path: Path) -> bool:
        """A data file a table may read: one inside the folder, also once symlinks are
        followed (a link leaving the folder is never read, so never offered)."""
        return (
            path.is_file()
            and detect_format(path) is not None
            and path.resolve().is_relative_to(self.root)
        )

    def files_of(self, request: TableRequest) -> list[Path]:
        """The files ``request`` names (a file or a glob), all inside the source folder."""
        if not request.source_table:
            raise InvalidTableSpec(
                f"Table '{request.id}' needs a source_table (a file name or glob)."
            )
        base = (self.root / request.bucket) if request.bucket else self.root
        try:
            matches = sorted(base.glob(request.source_table))
        except (ValueError, NotImplementedError):
            raise InvalidTableSpec(
                f"source_table '{request.source_table}' must be a file name or a relative glob."
            ) from None
        inside = [p for p in matches if p.is_file() and p.resolve().is_relative_to(self.root)]
        leaving = [p for p in matches if p.is_file() and p not in inside]
        if leaving and not inside:
            raise SourceTableNotFound(
                f"'{request.source_table}' in {base} leads through a symlink to a file "
                f"outside the folder of source '{self.context.name}', and is never read.",
                hint=f"Copy or move the file into {self.root}.",
            )
        if not inside:
            offered = ", ".join(t.source_table for t in self.list_tables()[:20]) or "none"
            raise SourceTableNotFound(
                f"No file in {base} matches '{request.source_table}' "
                f"(source '{self.context.name}').",
                hint=f"Files there: {offered}.",
            )
        return inside

    def source_sql(self, request: TableRequest) -> tuple[str, list[Path]]:
        files = with_content(self.files_of(request))
        options = cast(FileTableOptions, self.table_options(request))
        if options.format == "auto":
            _refuse_mixed_formats(files, request)
        return f"SELECT * FROM {reader_sql(files, options)}", files

    def _checked_source(
        self, con: duckdb.DuckDBPyConnection, sql: str, files: list[Path], request: TableRequest
    ) -> tuple[str, list[str]]:
        """The source's SQL once its files pass the checks before a sync, and what the sync
        should say of how they are read; a single CSV is sniffed once here and read as
        found (every later bind of it reads no data)."""
        options = cast(FileTableOptions, self.table_options(request))
        error = empty_files_error(files, options)
        if error is not None:
            raise error
        kind = csv_kind(files, options)
        if kind is None:
            exact, retyped = exact_json_sql(con, files, options)
            said = retyped_note(retyped)
            return exact or exact_parquet_sql(con, files, options) or sql, [said] if said else []
        # Each file of a glob is sniffed on its own (its columns matched by name), so each
        # is checked on its own: one cut short would otherwise add a column named by its
        # header line, and one with a preamble lose its first lines. The table's given
        # columns are the reader's, not the sniffer's (which would refuse other names).
        args = dialect_args(kind, options) if options.columns else csv_args(kind, options)
        names = set()
        finer: dict[str, str] = {}  # columns typed otherwise than the sniffer would, by name
        numbers: dict[str, str] = {}  # of them, DOUBLE columns read exactly
        read: list[tuple[Path, Sniffed]] = []  # each file as sniffed, for a glob
        for one in files:
            sniffed = sniff(con, one, args)
            error = skipped_lines_error(one, options, sniffed) or unsplit_csv_error(
                con, [one], options, sniffed
            )
            if error is not None:
                raise error
            if not options.columns:
                found = with_exact_types(con, one, sniffed, unsniffed_args(one, options, sniffed))
                for (n, k), (_, was) in zip(found.columns, sniffed.columns, strict=True):
                    if k != was:
                        finer[n] = k
                        if was == DOUBLE:
                            numbers[n] = k
                sniffed = found
            if len(files) == 1 and not options.columns:
                sql = f"SELECT * FROM {sniffed_reader_sql(one, options, sniffed)}"
            read.append((one, sniffed))
            names.add(tuple(options.columns or (name for name, _ in sniffed.columns)))
        if len(files) > 1 and numbers:
            # each file's digits counted alone: the type that holds all of them, over all
            as_text = sniffed_files_sql(read, options, finer | dict.fromkeys(numbers, "VARCHAR"))
            numbers = exact_types(con, f"({as_text})", list(numbers))
            finer |= numbers
        if len(files) > 1 and not options.columns:
            # each file read as sniffed above: a bind of the glob's own reader sniffed
            # every file again (each DESCRIBE of the sync and its COPY did)
            sql = sniffed_files_sql(read, options, finer)
        said = retyped_note(numbers)
        return without_blank_lines(sql, names, options), [said] if said else []

    def describe_table(self, request: TableRequest) -> list[Column]:
        sql, files = self.source_sql(request)
        con = self.duckdb_cursor()
        try:
            sql, _ = self._checked_source(con, sql, files, request)
            rows = con.execute(f"DESCRIBE {sql}").fetchall()
        except duckdb.Error as exc:
            raise explain(exc, files) from None
        finally:
            con.close()
        return [Column(name=r[0], type=r[1], nullable=r[2] != "NO") for r in rows]

    def extract(self, request: TableRequest, writer: ExtractWriter) -> PublishedTable:
        self.check_supported(request)
        sql, files = self.source_sql(request)
        con = self.duckdb_cursor(writer.paths.root)
        try:
            sql, read_as = self._checked_source(con, sql, files, request)
            published = strategies.run(con, sql, request, writer)
            options = cast(FileTableOptions, self.table_options(request))
            notes = [
                *read_as,
                as_text_note(wide_parquet_decimals(files, options)[1]),
                empty_files_note(self.files_of(request), files),
            ]
        except duckdb.Error as exc:
            raise explain(exc, files) from None
        finally:
            con.close()
        published.notes.extend(note for note in notes if note)
        return published


def _refuse_mixed_formats(files: list[Path], request: TableRequest) -> None:
    """Files of several formats under one glob (``*`` over CSVs and a parquet, or a README):
    read with the first file's reader, a parquet failed "not possible to automatically
    detect the CSV parsing dialect" and a text file became a column. Refused, naming them."""
    kinds: dict[str, list[str]] = {}
    for path in files:
        kinds.setdefault(detect_format(path) or "unknown", []).append(path.name)
    if len(kinds) < 2:
        return
    listing = "; ".join(
        f"{kind}: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
        for kind, names in sorted(kinds.items())
    )
    raise InvalidTableSpec(
        f"The files '{request.source_table}' matches are of {len(kinds)} formats "
        f"({listing}); one table reads files of one format.",
        hint="Narrow source_table to one format (e.g. '*.csv'), or set the table's 'format' "
        "source option to read them all as one.",
        details={"field": "source_table"},
    )
