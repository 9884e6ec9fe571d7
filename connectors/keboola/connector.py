"""The keboola connector: Keboola Storage tables, exported through the Storage API.

Discovery verifies the token (``GET /v2/storage/tokens/verify``), lists buckets and their
tables (``GET /v2/storage/buckets``, ``GET /v2/storage/buckets/{id}/tables?include=columns``)
and describes one table (``GET /v2/storage/tables/{id}``). An extraction exports the table
(:mod:`connectors.keboola.export`), reads the slices with DuckDB and hands the relation to
the shared strategies: ``full_refresh`` and ``partitioned`` over a full export,
``incremental`` over the rows changed since the last sync (:mod:`connectors.keboola.merge`).
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, cast
from urllib.parse import quote

import duckdb

from agnes_sync import atomic, strategies
from agnes_sync.connector import (
    Capability,
    Column,
    Connector,
    SourceContext,
    SourceTable,
    TableRequest,
)
from agnes_sync.contract import ExtractWriter, PublishedTable
from agnes_sync.errors import (
    InvalidTableSpec,
    SourceDataError,
    SyncError,
    TerminalSyncError,
    TransientSyncError,
)
from agnes_sync.human_size import human_size
from agnes_sync.wide_decimals import as_text_note
from connectors.keboola.answers import an_object, objects
from connectors.keboola.client import StorageClient
from connectors.keboola.export import (
    MAX_ROW_BYTES,
    ExportedFile,
    Exporter,
    ExportParams,
    reader_sql,
)
from connectors.keboola.filters import local_predicate, where_filters
from connectors.keboola.merge import merge
from connectors.keboola.options import KeboolaOptions, KeboolaTableOptions
from connectors.keboola.state import read_state, write_state
from connectors.keboola.tables import KeboolaTable, bucket_of, parse_table, source_tables, table_id

logger = logging.getLogger("agnes.sync")
SKEW = timedelta(minutes=5)


class KeboolaConnector(Connector):
    name = "keboola"
    description = "Keboola Storage tables, exported through the Storage API."
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.FULL_REFRESH, Capability.INCREMENTAL, Capability.PARTITIONED}
    )
    Options = KeboolaOptions
    TableOptions = KeboolaTableOptions

    def __init__(self, context: SourceContext) -> None:
        super().__init__(context)
        self._client: StorageClient | None = None
        self._client_lock = threading.Lock()
        self._csv_only = self.settings.file_type == "csv"
        # Keboola files whose slices were found damaged (cut off in the store): its export
        # cache would hand them back, so they are never taken again
        self._damaged: set[int] = set()

    @property
    def settings(self) -> KeboolaOptions:
        return cast(KeboolaOptions, self.options)

    @property
    def client(self) -> StorageClient:
        with self._client_lock:
            if self._client is None:
                s = self.settings
                self._client = StorageClient(
                    s.url,
                    s.token_env,
                    attempts=s.http_attempts,
                    timeout=s.http_timeout_seconds,
                    max_retry_after=s.max_retry_after_seconds,
                )
            return self._client

    def clock(self) -> datetime:
        return datetime.now(UTC)

    def exporter(self) -> Exporter:
        s = self.settings
        return Exporter(
            self.client, s.parallel_downloads, s.job_timeout_seconds, s.job_poll_seconds
        )

    # --- discovery -----------------------------------------------------------------------

    def verify(self) -> dict[str, Any]:
        """The token's description (``GET /v2/storage/tokens/verify``); refused tokens raise.
        Keboola's answer holds the token itself (``token``): never handed on."""
        path = "/v2/storage/tokens/verify"
        answer = an_object(self.client.get(path), f"GET {path}")
        return {k: v for k, v in answer.items() if k != "token"}

    def list_tables(self) -> list[SourceTable]:
        self.verify()
        listed = objects(self.client.get("/v2/storage/buckets"), "GET /v2/storage/buckets")
        buckets = [str(b["id"]) for b in listed]

        def tables_of(bucket: str) -> tuple[str, list[dict[str, Any]]]:
            path = f"/v2/storage/buckets/{quote(bucket, safe='')}/tables"
            # The listing's documented default include is "metadata" (descriptions); asking
            # for columns alone would drop it.
            answer = self.client.get(path, {"include": "columns,metadata"}, bucket)
            return bucket, objects(answer, f"GET {path}")

        with ThreadPoolExecutor(max_workers=max(1, min(8, len(buckets)))) as pool:
            listing = list(pool.map(tables_of, buckets))
        return source_tables(listing)

    def table(self, request: TableRequest) -> KeboolaTable:
        """The Keboola table ``request`` names, with its columns typed."""
        ident = table_id(request.bucket, request.source_table)
        path = f"/v2/storage/tables/{quote(ident, safe='')}"
        detail = an_object(
            self.client.get(path, bucket=bucket_of(ident)), f"GET {path}", needs=("id",)
        )
        options = cast(KeboolaTableOptions, self.table_options(request))
        return parse_table(detail, options.column_types)

    def describe_table(self, request: TableRequest) -> list[Column]:
        options = cast(KeboolaTableOptions, self.table_options(request))
        return list(self.table(request).select(options.columns))

    # --- extraction ----------------------------------------------------------------------

    def extract(self, request: TableRequest, writer: ExtractWriter) -> PublishedTable:
        self.check_supported(request)
        options = cast(KeboolaTableOptions, self.table_options(request))
        table = self.table(request)
        columns = table.select(options.columns)
        workdir = atomic.staging_path(writer.paths.data / f"{request.id}.export")
        try:
            if request.sync_strategy == Capability.INCREMENTAL:
                published = self._incremental(request, table, columns, writer, workdir)
            else:
                exported = self._export(table, columns, request, workdir)
                published = self._publish(request, writer, exported, columns, None)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        note = as_text_note(_as_text(table, columns))
        if note:
            published.notes.append(note)
        return published

    def _export(
        self,
        table: KeboolaTable,
        columns: tuple[Column, ...],
        request: TableRequest,
        workdir: Path,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> ExportedFile:
        s = self.settings
        exporter = self.exporter()
        params = ExportParams(
            columns=tuple(c.name for c in columns),
            where_filters=tuple(where_filters(request.where_filters, {c.name for c in columns})),
            changed_since=since,
            changed_until=until,
            # CSV holds a too-wide decimal as its exact text; parquet as a decimal256
            # that DuckDB reads as DOUBLE
            file_type="csv" if self._csv_only or _as_text(table, columns) else "parquet",
        )
        shutil.rmtree(workdir, ignore_errors=True)
        damaged = frozenset(self._damaged)
        try:
            return exporter.export(table.id, params, workdir, damaged)
        except TerminalSyncError as exc:
            if params.file_type != "parquet" or s.file_type != "auto" or not _refuses_parquet(exc):
                raise
        shutil.rmtree(workdir, ignore_errors=True)
        exported = exporter.export(table.id, replace(params, file_type="csv"), workdir, damaged)
        logger.info("source %s: the stack refused a parquet export; using CSV", self.context.name)
        self._csv_only = True  # only once CSV worked: the refusal was about parquet
        return exported

    def local_filter(self, predicate: str | None, columns: Sequence[Column]) -> str | None:
        """Text columns compared with numbers compare as numbers, as Keboola's
        ``dataType: DOUBLE`` filter does (:func:`~connectors.keboola.filters.local_predicate`)."""
        return local_predicate(predicate, {c.name: c.type for c in columns})

    def _publish(
        self,
        request: TableRequest,
        writer: ExtractWriter,
        exported: ExportedFile,
        columns: tuple[Column, ...],
        key: tuple[str, ...] | None,
    ) -> PublishedTable:
        sql = reader_sql(exported, columns)
        if request.where_filters:  # applied again here, comparing as Keboola compared
            request = replace(
                request, where_filters=self.local_filter(request.where_filters, columns)
            )
        con = self.duckdb_cursor(writer.paths.root)
        try:
            if key is not None:
                return merge(con, sql, request, key, writer, [c.name for c in columns])
            return strategies.run(con, sql, request, writer)
        except duckdb.Error as exc:
            explained = _explain(exc, request)
            if explained.details.get("damaged") and exported.file_id is not None:
                self._damaged.add(exported.file_id)
            raise explained from None
        finally:
            con.close()

    def _incremental(
        self,
        request: TableRequest,
        table: KeboolaTable,
        columns: tuple[Column, ...],
        writer: ExtractWriter,
        workdir: Path,
    ) -> PublishedTable:
        key = request.primary_key or table.primary_key
        if not key:
            raise InvalidTableSpec(
                f"Table '{request.id}' is incremental, but neither it nor Keboola table "
                f"{table.id} has a primary key to merge by.",
                hint="Register it with --primary-key, or set the primary key in Keboola.",
            )
        names = {c.name for c in columns}
        missing = [k for k in key if k not in names]
        if missing:
            raise InvalidTableSpec(
                f"The primary key column(s) {', '.join(missing)} of table '{request.id}' are "
                f"not among the exported columns of {table.id}."
            )
        published = writer.published_path(request.id) is not None
        state = read_state(writer, request.id) if published else None
        if state is not None and state.keboola_table != table.id:
            state = None  # the registration now names another table: start over
        now = self.clock()
        if state is not None and state.changed_since is not None and state.load_until is None:
            window = timedelta(days=request.incremental_window_days or 0)
            ranges: list[tuple[datetime | None, datetime | None]] = [
                (state.changed_since - window, None)
            ]
        else:
            start = state.changed_since if state is not None else _history_start(request, now)
            ranges = _chunks(start, _created(table), now, request.initial_load_chunk_days)
        result: PublishedTable | None = None
        for index, (since, until) in enumerate(ranges):
            started = self.clock()
            exported = self._export(table, columns, request, workdir, since, until)
            last = index == len(ranges) - 1
            if until is not None and not last:  # a sync stopped after this part says so
                writer.publishes_incomplete(
                    request.id, _partial_load(until, len(ranges) - index - 1)
                )
            result = self._publish(request, writer, exported, columns, tuple(key))
            # the next export starts when this one's job was created (Keboola's clock),
            # else a little before it started here (clocks drift)
            next_since = until if not last else (exported.job_created or started - SKEW)
            write_state(
                writer, request.id, table.id, next_since, None if last else now, self.clock()
            )
        assert result is not None
        return result


def _partial_load(until: datetime, left: int) -> str:
    """What a table published part way through its first load says in every answer."""
    parts = "part" if left == 1 else "parts"
    return (
        f"its first load from Keboola holds the rows imported before "
        f"{until.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({left} more {parts} of "
        "initial_load_chunk_days to go); the next sync loads the rest."
    )


def _history_start(request: TableRequest, now: datetime) -> datetime | None:
    """Where a first load starts: ``max_history_days`` back, else at the beginning. Not at
    the table's creation: an alias (every table of a linked bucket too) holds rows its
    source imported before the alias was created, and ``changedSince`` filters by import."""
    if request.max_history_days:
        return now - timedelta(days=request.max_history_days)
    return None


def _created(table: KeboolaTable) -> datetime | None:
    if not table.created:
        return None
    try:
        created = datetime.fromisoformat(table.created)
    except ValueError:
        return None
    return created if created.tzinfo else created.replace(tzinfo=UTC)


def _chunks(
    start: datetime | None, origin: datetime | None, now: datetime, days: int | None
) -> list[tuple[datetime | None, datetime | None]]:
    """A first load as ``[since, until)`` ranges from ``start`` (None: the beginning), cut
    every ``days`` from ``start`` or else from ``origin`` (the table's creation); the first
    range keeps ``start`` as its bound and the last one is open (up to the export)."""
    cursor = start or origin
    if cursor is None or not days:
        return [(start, None)]
    ranges: list[tuple[datetime | None, datetime | None]] = []
    step = timedelta(days=days)
    while cursor + step + step / 2 <= now:  # the open last chunk takes up to 1.5 steps
        ranges.append((cursor if ranges else start, cursor + step))
        cursor += step
    ranges.append((cursor if ranges else start, None))
    return ranges


def _refuses_parquet(exc: TerminalSyncError) -> bool:
    """Maybe a refusal of ``fileType=parquet``: a 400/422 on the request, or a job error
    naming it (the CSV export that follows tells)."""
    text = exc.message.lower()
    return exc.details.get("status") in (400, 422) or "parquet" in text or "filetype" in text


def _explain(exc: duckdb.Error, request: TableRequest) -> SyncError:
    first = str(exc).splitlines()[0]
    if "Maximum line size" in str(exc) or "does not support a full read" in first:
        return SourceDataError(
            f"A row of Keboola's export of table '{request.id}' is longer than "
            f"{human_size(MAX_ROW_BYTES)} as CSV (its text values together), more than is "
            "read as one row.",
            hint="Leave the longest text columns out with the table's columns option, or "
            "export parquet (the source's file_type option, where the stack offers it).",
        )
    if isinstance(exc, duckdb.ConversionException | duckdb.InvalidInputException):
        return SourceDataError(
            f"Keboola's export of table '{request.id}' does not read as its columns: {first}",
            hint="Set the column's type with the table's column_types option, or fix the data.",
        )
    if isinstance(exc, duckdb.IOException) and "gzip" in first.lower():
        # a slice cut off (an answer delimited by the connection's close has no length to
        # check) or damaged in the store: a new export brings new files
        return TransientSyncError(
            f"A slice of Keboola's export of table '{request.id}' is not a whole gzip file "
            f"(cut off or damaged): {first.split(': /', 1)[0]}",
            hint="The sync is retried with a new export.",
            details={"damaged": True},
        )
    return TerminalSyncError(f"Publishing table '{request.id}' failed: {first}")


def _as_text(table: KeboolaTable, columns: Sequence[Column]) -> list[str]:
    """The exported ``columns`` of decimals too wide for DuckDB, published as exact text."""
    names = {c.name for c in columns}
    return [named for named in table.as_text if named.split(" ", 1)[0] in names]
