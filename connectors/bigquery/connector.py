"""The BigQuery connector: registers tables as remote (metadata only) or materializes SQL."""

from __future__ import annotations

import concurrent.futures
import re
import unicodedata
from typing import TYPE_CHECKING, ClassVar, cast

from agnes_sync import arrow_parquet, atomic
from agnes_sync.connector import Capability, Column, Connector, SourceTable, TableRequest
from agnes_sync.contract import ExtractWriter, PublishedTable, RemoteAttach
from agnes_sync.errors import (
    ConnectorCapabilityMissing,
    InvalidTableSpec,
    SourceTableNotFound,
    TerminalSyncError,
    TransientSyncError,
)
from agnes_sync.human_size import human_size
from agnes_sync.table_spec import suggested_table_id
from agnes_sync.wide_decimals import as_text_note, exact_decimals
from connectors.bigquery.api_answers import (
    column_type,
    credentials_refused,
    from_bigquery,
    message,
    reason,
    retry_later,
)
from connectors.bigquery.client import BigQueryOptions, bounded_retries, make_client

if TYPE_CHECKING:
    from google.cloud import bigquery

_DATASET = re.compile(r"^[A-Za-z0-9_-]{1,1024}$")
# Table names: up to 1,024 UTF-8 bytes of letters, marks, numbers, connectors ('_'),
# dashes and spaces (Unicode categories L, M, N, Pc, Pd, Zs; BigQuery's naming rules).
_TABLE_CHARACTERS = ("L", "M", "N", "Pc", "Pd", "Zs")


def _table_name(name: str) -> bool:
    return (
        0 < len(name.encode()) <= 1024
        and name.strip() == name
        and all(unicodedata.category(c).startswith(_TABLE_CHARACTERS) for c in name)
    )


MATERIALIZE_MAX_BYTES = 50 * 1024**3  # a materialization can never bill more than this


class BigQueryConnector(Connector):
    name = "bigquery"
    description = "Google BigQuery: tables stay remote, or registered SQL is materialized."
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.FULL_REFRESH, Capability.REMOTE, Capability.MATERIALIZED}
    )
    Options = BigQueryOptions

    @property
    def settings(self) -> BigQueryOptions:
        return cast(BigQueryOptions, self.options)

    def check_supported(self, request: TableRequest) -> None:
        """Also refuse ``local``: a BigQuery table is never copied whole (it would be one
        full scan, billed); it stays remote or a query's result is materialized."""
        super().check_supported(request)
        if request.query_mode == "local":
            raise ConnectorCapabilityMissing(
                f"A BigQuery table is not copied whole (table '{request.id}'): register it "
                "as remote (queried in BigQuery under the scan caps) or materialized (a "
                "query's result kept here).",
                hint="--query-mode remote, or --query-mode materialized --query 'SELECT ...'.",
            )

    def _client(self) -> bigquery.Client:
        return make_client(self.settings)

    def _path(self, request: TableRequest) -> str:
        dataset, table = request.bucket or "", request.source_table or ""
        if not dataset or not table:
            raise InvalidTableSpec(f"Table '{request.id}' needs bucket (dataset) and source_table.")
        if not _DATASET.match(dataset):
            raise InvalidTableSpec(
                f"'{dataset[:100]}' is not a BigQuery dataset name (letters, digits, '_')."
            )
        if not _table_name(table):
            raise InvalidTableSpec(
                f"'{table[:100]}' is not a BigQuery table name: letters, marks, numbers, '_', "
                "'-' and spaces (not leading or trailing), up to 1,024 bytes."
            )
        return f"{self.settings.project}.{dataset}.{table}"

    def list_tables(self) -> list[SourceTable]:
        found = []
        try:
            client = self._client()
            timeout = self.settings.http_timeout_seconds
            for dataset in client.list_datasets(**bounded_retries(timeout)):
                for item in client.list_tables(dataset.dataset_id, **bounded_retries(timeout)):
                    found.append(
                        SourceTable(
                            item.table_id,
                            dataset.dataset_id,
                            suggested_table_id(item.table_id),
                        )
                    )
        except Exception as exc:
            failure = _sync_failure(exc, "listing the tables", self.settings)
            if failure is None:
                raise
            raise failure from None
        return found

    def describe_table(self, request: TableRequest) -> list[Column]:
        from google.api_core import exceptions

        try:
            client = self._client()
            if request.query_mode == "materialized":
                job = client.query(
                    request.source_query or "",
                    job_config=self._dry_run(),
                    job_retry=None,  # a dry run runs nothing to run again
                    **bounded_retries(self.settings.http_timeout_seconds),
                )
                fields = job.schema or []
            else:
                fields = client.get_table(
                    self._path(request), **bounded_retries(self.settings.http_timeout_seconds)
                ).schema
        except Exception as exc:
            if isinstance(exc, exceptions.BadRequest) and not retry_later(exc):
                raise InvalidTableSpec(f"BigQuery refused the SQL: {message(exc)}") from None
            failure = _not_found(exc, request, self) or _sync_failure(
                exc, f"describing '{request.id}'", self.settings
            )
            if failure is None:
                raise
            raise failure from None
        return [Column(f.name, column_type(f), f.mode != "REQUIRED") for f in fields]

    def _dry_run(self) -> bigquery.QueryJobConfig:
        from google.cloud import bigquery

        return bigquery.QueryJobConfig(dry_run=True, use_query_cache=False)

    def extract(self, request: TableRequest, writer: ExtractWriter) -> PublishedTable:
        self.check_supported(request)
        try:
            client = self._client()
            if request.query_mode == "materialized":
                return self._materialize(client, request, writer)
            table = client.get_table(
                self._path(request), **bounded_retries(self.settings.http_timeout_seconds)
            )
        except Exception as exc:
            if reason(exc) == "bytesBilledLimitExceeded":
                raise _over_cap(request) from None
            failure = _not_found(exc, request, self) or _sync_failure(
                exc, f"syncing '{request.id}'", self.settings
            )
            if failure is None:
                raise
            raise failure from None
        return writer.publish_remote(
            request.id,
            attach=RemoteAttach(
                self.settings.alias,
                "bigquery",
                self.settings.project,
                self.settings.credentials_env,
            ),
            remote_name=self._path(request),
            description=request.description or (table.description or ""),
            rows=table.num_rows,
            size_bytes=table.num_bytes,
            bind_view=False,
        )

    def _materialize(
        self, client: bigquery.Client, request: TableRequest, writer: ExtractWriter
    ) -> PublishedTable:
        from google.api_core import exceptions
        from google.cloud import bigquery

        if not (request.source_query or "").strip():
            raise InvalidTableSpec(f"Materialized table '{request.id}' needs a source_query.")
        limit = self.settings.job_timeout_seconds
        config = bigquery.QueryJobConfig(
            maximum_bytes_billed=MATERIALIZE_MAX_BYTES,
            labels={"agnes_sync": request.id},
            job_timeout_ms=int(limit * 1000),
        )
        try:
            rows = client.query_and_wait(
                request.source_query,
                job_config=config,
                wait_timeout=limit,
                api_timeout=self.settings.http_timeout_seconds,
                **bounded_retries(limit, jobs=True),
            )
            table, as_text = exact_decimals(rows.to_arrow(create_bqstorage_client=False))
        except (concurrent.futures.TimeoutError, exceptions.DeadlineExceeded):
            # a job that never ends held a sync worker for ever (two held them all)
            raise TransientSyncError(
                f"BigQuery's query of '{request.id}' ran longer than {limit:g} s "
                "(job_timeout_seconds) and was stopped.",
                hint="Raise the source's job_timeout_seconds for a slow query, or make the "
                "source_query cheaper.",
                details={"limit_seconds": limit},
            ) from None
        staged = writer.staging_file(request.id)
        try:
            intervals = arrow_parquet.write_table(table, staged)
            published = writer.publish_file(
                request.id, staged, description=request.description, query_mode="materialized"
            )
        finally:
            atomic.discard(staged)
        for note in (as_text_note(as_text), arrow_parquet.finer_intervals_note(intervals)):
            if note:
                published.notes.append(note)
        return published


def _over_cap(request: TableRequest) -> TerminalSyncError:
    """The billing cap's refusal: terminal whatever class the client made of it (it
    arrives as a 400, or in the job's status as a 500)."""
    return TerminalSyncError(
        f"BigQuery stopped the query of '{request.id}': it would bill more than the cap "
        f"of {human_size(MATERIALIZE_MAX_BYTES)}.",
        hint="Narrow the source_query (fewer columns, a partition filter).",
        details={"limit_bytes": MATERIALIZE_MAX_BYTES},
    )


def _not_found(
    exc: Exception, request: TableRequest, connector: BigQueryConnector
) -> SourceTableNotFound | None:
    """BigQuery's 404 ``notFound``: the registered table, or one the source_query reads
    (a materialized table has no dataset of its own to name)."""
    from google.api_core import exceptions

    if not isinstance(exc, exceptions.NotFound):
        return None
    if request.query_mode == "materialized":
        return SourceTableNotFound(
            f"The source_query of '{request.id}' reads something BigQuery does not have: "
            f"{message(exc)}",
            hint="Fix the table names in the source_query (project.dataset.table), or grant "
            "the service account access to the dataset.",
        )
    return SourceTableNotFound(f"BigQuery has no table {connector._path(request)}.")


def _sync_failure(
    exc: Exception, doing: str, options: BigQueryOptions
) -> TerminalSyncError | TransientSyncError | None:
    """What a BigQuery error means for a sync, in BigQuery's own words (no request line),
    by its documented reason rather than its HTTP status: ``rateLimitExceeded`` and
    ``quotaExceeded`` are 403s and ``jobBackendError`` a 400, all worth retrying; an outage
    or a network failure too. None: not a failure of BigQuery (a bug, raised as it is)."""

    if credentials_refused(exc):
        held = f"${options.credentials_env}" if options.credentials_env else "default credentials"
        return TerminalSyncError(
            f"BigQuery did not accept the source's credentials ({held}) while {doing}: "
            f"{type(exc).__name__}.",
            hint=f"Check the service-account key in {held}: it may be revoked, expired or "
            "lack the BigQuery roles (BigQuery Data Viewer and Job User).",
        )
    if not from_bigquery(exc):
        return None
    said = reason(exc)
    if retry_later(exc):
        return TransientSyncError(
            f"BigQuery is busy or unavailable ({said or 'no reason given'}) while {doing}: "
            f"{message(exc)}",
            hint="Nothing to fix here: the sync is retried (a used-up quota resets later).",
        )
    return TerminalSyncError(
        f"BigQuery refused {doing}: {message(exc)}",
        hint="BigQuery's message says why (accessDenied: grant the service account access).",
        details={"bigquery_reason": said} if said else None,
    )
