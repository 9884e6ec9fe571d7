"""Remote queries on BigQuery through the official client library.

- Estimates are dry runs (``dry_run=True``, no cache): BigQuery's own byte count, free.
- Every job that runs carries ``maximum_bytes_billed``: even if an estimate were wrong,
  BigQuery itself refuses to bill past the cap (``bytesBilledLimitExceeded``), which is
  reported as ``remote_scan_too_large``. ``job_timeout_ms`` stops a job the caller gave up on.
- A query is a job Agnes names (``jobs.insert`` with its own job id) and charged what
  BigQuery billed for it: the finished job's ``statistics.query.totalBytesBilled`` (bytes
  processed rounded up per MB, at least 10 MB a table read, 0 for a cached result), not
  the bytes it processed. ``jobs.query`` (``query_and_wait``) answers neither the bytes
  billed nor, while it waits, the job's id.
- The job registers with the caller it runs for (:data:`~agnes_sync.caller.CALLER`) before
  it is created: a caller who gives up has it stopped in BigQuery (``jobs.cancel``), and
  so does a query past its timeout, instead of running on until ``job_timeout_ms``.
- Results come back as Arrow over the REST API (no Storage API client: results are capped
  to a few thousand rows anyway) and are cut to the row and byte caps like local ones.
- The client library retries 429, 5xx and BigQuery's retryable reasons for up to 10
  minutes by default; every call here bounds those retries by the query timeout (the
  HTTP timeout for a dry run or a schema; :func:`~connectors.bigquery.client.bounded_retries`),
  so an outage is a prompt, typed refusal.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from agnes_mcp.rails.engine import EngineResources, Estimate, RemoteEngine, RemoteResult
from agnes_mcp.rails.refusals import (
    QueryFailed,
    QueryRefused,
    RemoteEstimateFailed,
    RemoteScanTooLarge,
    query_cancelled,
    query_timeout,
)
from agnes_mcp.rails.sandbox import Limits, capped
from agnes_mcp.rails.tables import CatalogTable, RemoteLocation
from agnes_sync.caller import CALLER, caller_gave_up
from agnes_sync.connector import Column
from connectors.bigquery.api_answers import (
    column_type,
    credentials_refused,
    from_bigquery,
    message,
    reason,
    retry_later,
)
from connectors.bigquery.client import (
    BigQueryOptions,
    bounded_retries,
    make_client,
    one_attempt,
)

if TYPE_CHECKING:
    import pyarrow as pa
    from google.cloud import bigquery

    from agnes_sync.connector import Connector

_DUCKDB_ISMS = (
    (re.compile(r"::"), "'::' casts are DuckDB syntax; write CAST(x AS DATE) or DATE '2026-01-01'"),
    (re.compile(r"\bilike\b", re.I), "ILIKE is DuckDB syntax; write LOWER(column) LIKE '%x%'"),
    (
        re.compile(r"\bstrftime\s*\(", re.I),
        "strftime() is DuckDB; write FORMAT_DATE('%Y-%m', column)",
    ),
    (
        re.compile(r"\bdate_trunc\s*\(\s*'", re.I),
        "date_trunc('month', x) is DuckDB; write DATE_TRUNC(x, MONTH)",
    ),
    (re.compile(r"\bnow\s*\(\s*\)", re.I), "now() is DuckDB; write CURRENT_TIMESTAMP()"),
    (
        re.compile(r"\binterval\s+'", re.I),
        "INTERVAL '30 days' is DuckDB; write INTERVAL 30 DAY",
    ),
    (
        re.compile(r"\bcurrent_date\b(?!\s*\()", re.I),
        "CURRENT_DATE without parentheses is DuckDB; write CURRENT_DATE()",
    ),
)

logger = logging.getLogger("agnes.bigquery")


def _outside_strings(text: str) -> str:
    """``text`` with the contents of quoted strings blanked (so '::' in a value is fine)."""
    return re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "''", text)


_LABEL_TEXT = re.compile(r"[^a-z0-9_-]")
# Seconds a refusal waits for a job it cancelled to stop, to charge what BigQuery billed.
STOPPING_WAIT = 10.0


@dataclass
class _Job:
    """A query job Agnes names, and where BigQuery runs it: jobs.get and jobs.cancel find
    a job in a single region (``us-central1``) only when told its location. Without the
    source's ``location`` option BigQuery places the job where its datasets are; the
    insert's answer says where."""

    id: str
    location: str | None


class BigQueryEngine(RemoteEngine):
    dialect = "bigquery"
    name = "bigquery"
    canonical_paths = True

    def __init__(self, options: BigQueryOptions) -> None:
        self.options = options
        self._client: bigquery.Client = make_client(options)

    @classmethod
    def open(
        cls, location: RemoteLocation, source: Connector, resources: EngineResources
    ) -> BigQueryEngine:
        """The source's full options (endpoint, location, credentials variable) build it."""
        options = getattr(source, "options", None)
        if not isinstance(options, BigQueryOptions):
            raise RemoteEstimateFailed(f"Source '{location.source}' is not a BigQuery source.")
        try:
            return cls(options)
        except Exception as exc:
            if credentials_refused(exc):  # no default credentials, a key that does not load
                raise _unusable_credentials(options, exc, RemoteEstimateFailed) from None
            raise

    @classmethod
    def recent_predicate(cls, column: str, days: int) -> str:
        return f"{column} >= DATE_SUB(CURRENT_DATE(), INTERVAL {int(days)} DAY)"

    @classmethod
    def table_reference(cls, parts: list[str]) -> exp.Table:
        """``project.dataset.table``: the only spelling that resolves whatever the job's
        default project is."""
        return exp.Table(
            this=exp.to_identifier(parts[-1]),
            db=exp.to_identifier(parts[-2]) if len(parts) > 1 else None,
            catalog=exp.to_identifier(parts[-3]) if len(parts) > 2 else None,
        )

    @classmethod
    def foreign_syntax(cls, predicate: str, table_id: str) -> str | None:
        for pattern, advice in _DUCKDB_ISMS:
            if pattern.search(_outside_strings(predicate)):
                return (
                    f"The where clause uses DuckDB syntax, but {table_id} is a BigQuery table: "
                    f"{advice}."
                )
        return None

    def estimate(self, tree: exp.Expression, tables: list[CatalogTable]) -> Estimate:
        from google.api_core import exceptions
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(dry_run=True, use_query_cache=False)
        seconds = self.options.http_timeout_seconds
        try:
            job = self._client.query(
                tree.sql(dialect="bigquery"),
                job_config=config,
                job_retry=None,  # a dry run is no job to run again (else 10 more minutes)
                **bounded_retries(seconds),
            )
        except Exception as exc:
            if credentials_refused(exc):
                raise _unusable_credentials(self.options, exc, RemoteEstimateFailed) from None
            if not from_bigquery(exc):
                raise
            if retry_later(exc):
                raise _busy(exc, RemoteEstimateFailed, "could not price the query") from None
            if isinstance(exc, exceptions.BadRequest | exceptions.NotFound | exceptions.Forbidden):
                raise QueryFailed(f"BigQuery refused the query: {message(exc)}") from None
            raise RemoteEstimateFailed(
                f"BigQuery could not price the query: {message(exc)}"
            ) from None
        if job.total_bytes_processed is None:  # a dry run always says (0 for no table)
            raise RemoteEstimateFailed(
                "BigQuery could not price the query: its answer could not be read: the dry "
                "run's answer has no bytes processed (a scan is never taken for 0 bytes).",
                hint="Run the query again in a minute; if it persists, the server's "
                "api_endpoint may point at something other than BigQuery's API.",
            )
        scan = int(job.total_bytes_processed)
        return Estimate(scan_bytes=scan, detail={"dry_run": True, "tables": [t.id for t in tables]})

    def execute(
        self,
        tree: exp.Expression,
        tables: list[CatalogTable],
        *,
        limits: Limits,
        max_bytes: int,
        labels: dict[str, str],
    ) -> RemoteResult:
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(
            maximum_bytes_billed=max_bytes,
            labels=_labels(labels),
            job_timeout_ms=int(limits.timeout_seconds * 1000),
        )
        started = time.perf_counter()
        ref = _Job(f"agnes_{uuid.uuid4().hex}", self.options.location)
        try:
            job, table = self._run(tree.sql(dialect="bigquery"), config, ref, limits, tables)
        except Exception as exc:
            refusal = self._run_refusal(exc, max_bytes, limits.timeout_seconds)
            if refusal is None:
                raise
            if credentials_refused(exc) or isinstance(exc, QueryRefused):  # no job was created
                raise refusal from None
            raise _charged(refusal, self._failed_bill(ref), ref.id) from None
        result = capped(table, limits, time.perf_counter() - started)
        processed, billed = self._bill(job)
        return RemoteResult.of(result, processed, ref.id, bytes_billed=billed)

    def _run(
        self,
        sql: str,
        config: bigquery.QueryJobConfig,
        ref: _Job,
        limits: Limits,
        tables: list[CatalogTable],
    ) -> tuple[bigquery.QueryJob, pa.Table]:
        """The job ``ref`` of ``sql``, run to its end, and its rows. It is stopped in
        BigQuery when it does not end in time, or when the caller it runs for gives up
        (registered by its id before it is created, so a cancel finds it whenever it
        comes)."""
        seconds = limits.timeout_seconds
        caller = CALLER.get()
        if caller is not None:
            if caller.cancelled:
                raise query_cancelled()
            caller.on_cancel((self, ref.id), functools.partial(self._stop, ref))
        try:
            job = self._insert(sql, config, ref.id, seconds, tables)
            ref.location = job.location or ref.location
            if caller_gave_up():  # it gave up while the job was being created
                self._cancel(ref)
            try:
                rows = job.result(
                    max_results=limits.rows + 1,
                    timeout=seconds,
                    retry=bounded_retries(seconds)["retry"],
                )
            except concurrent.futures.TimeoutError:
                self._cancel(ref)  # no one waits for it any more
                raise
            return job, rows.to_arrow(create_bqstorage_client=False)
        finally:
            if caller is not None:
                caller.discard((self, ref.id))

    def _insert(
        self,
        sql: str,
        config: bigquery.QueryJobConfig,
        job_id: str,
        seconds: float,
        tables: list[CatalogTable],
    ) -> Any:
        """Create the job ``job_id`` (``jobs.insert``). An insert retried after its answer
        was lost finds the job made (409 ``duplicate``): the id is Agnes's own, so that job
        is this query's, and is taken (the client library gives up on a job id it was
        given)."""
        from google.api_core import exceptions

        try:
            return self._client.query(
                sql,
                job_config=config,
                job_id=job_id,
                job_retry=None,  # a job of a given id is not run again under that id
                **bounded_retries(seconds),
            )
        except exceptions.Conflict:
            return self._made_job(job_id, seconds, tables)

    def _made_job(self, job_id: str, seconds: float, tables: list[CatalogTable]) -> Any:
        """The job ``job_id`` whose insert answer was lost. BigQuery finds a job outside
        the US and EU multi-regions only when told its location; a source that names none
        ran it where the datasets it reads are (``datasets.get``), so it is looked for
        there."""
        from google.api_core import exceptions

        calls = bounded_retries(seconds)
        try:
            return self._client.get_job(job_id, **calls)
        except exceptions.NotFound:
            if self.options.location is not None:
                raise
            places = self._dataset_locations(tables, seconds)
            for place in places:
                with contextlib.suppress(exceptions.NotFound):
                    return self._client.get_job(job_id, location=place, **calls)
            raise

    def _dataset_locations(self, tables: list[CatalogTable], seconds: float) -> list[str]:
        """Where the datasets of ``tables`` are (each asked once)."""
        places: list[str] = []
        for dataset in dict.fromkeys(_dataset_of(t, self._client.project) for t in tables):
            if dataset is None:
                continue
            with contextlib.suppress(Exception):  # not found, unreachable: the next one
                where = self._client.get_dataset(dataset, **bounded_retries(seconds)).location
                if where and where not in places:
                    places.append(where)
        return places

    def _run_refusal(self, exc: Exception, max_bytes: int, seconds: float) -> QueryRefused | None:
        """A failed query job as a typed refusal (None: not BigQuery's failure)."""
        from google.api_core import exceptions

        if caller_gave_up():  # stopped for it (jobs.cancel), whatever the job then said
            return exc if isinstance(exc, QueryRefused) else query_cancelled()
        if isinstance(exc, concurrent.futures.TimeoutError | exceptions.DeadlineExceeded):
            return query_timeout(seconds)
        if credentials_refused(exc):
            return _unusable_credentials(self.options, exc, QueryFailed)
        if not from_bigquery(exc):
            return None
        # The cap's refusal comes as a 400, or in the job's status (then as whatever
        # class the client library makes of a reason it does not know): by reason.
        if reason(exc) == "bytesBilledLimitExceeded":
            return RemoteScanTooLarge(
                f"BigQuery stopped the query: it would bill more than the cap of "
                f"{max_bytes:,} bytes.",
                details={"limit_bytes": max_bytes},
            )
        if retry_later(exc):
            return _busy(exc, QueryFailed, "did not run the query")
        if isinstance(exc, exceptions.BadRequest):
            return QueryFailed(f"BigQuery refused the query: {message(exc)}")
        return QueryFailed(f"BigQuery failed: {message(exc)}")

    def _bill(self, job: Any) -> tuple[int, int | None]:
        """What the finished job processed and what BigQuery billed for it, from its
        statistics (a ``jobs.get`` when the job at hand does not carry them yet; None
        when that fails: the rows are there, and the bytes processed are charged)."""
        if job.total_bytes_billed is None:
            with contextlib.suppress(Exception):
                job = self._client.get_job(
                    job.job_id, location=job.location, **bounded_retries(self._seconds())
                )
        billed = job.total_bytes_billed
        return int(job.total_bytes_processed or 0), None if billed is None else int(billed)

    def _failed_bill(self, ref: _Job) -> tuple[int | None, int | None] | None:
        """What a job that failed or was stopped processed and was billed, from its
        statistics (``jobs.get``): the client library's error has none. A job just
        cancelled (past the query timeout) is still stopping: BigQuery's cancel returns at
        once, and a running job's statistics hold no bytes; it is asked again, a few
        seconds at most, until it is done. None when there is no such job (it was refused
        before it was created) or it ended having read nothing; ``(None, None)`` when its
        bill could not be read (BigQuery did not answer: each call once, not retried, so a
        refusal that BigQuery is down is not held up; or it was still stopping)."""
        from google.api_core import exceptions

        deadline = time.monotonic() + min(STOPPING_WAIT, self._seconds())
        pause = 0.1
        while True:
            try:
                job: Any = self._client.get_job(
                    ref.id, location=ref.location, **one_attempt(self._seconds())
                )
            except exceptions.NotFound:  # never created: nothing ran, nothing to tell
                return None
            except Exception:  # noqa: BLE001 - unreachable: the bill is not known
                return None, None
            if job.state == "DONE" or time.monotonic() + pause > deadline:
                break
            time.sleep(pause)
            pause = min(1.0, pause * 2)
        processed, billed = job.total_bytes_processed, job.total_bytes_billed
        if processed is None and billed is None:
            return None if job.state == "DONE" else (None, None)
        return int(processed or 0), int(billed or 0)

    def _stop(self, ref: _Job) -> None:
        """Cancel the job for a caller who gave up, on a thread of its own: the caller's
        cancel runs on the server's event loop, which must not wait on BigQuery."""
        threading.Thread(
            target=self._cancel,
            args=(ref,),
            kwargs={"retried": True},
            name="agnes-bigquery-cancel",
            daemon=True,
        ).start()

    def _cancel(self, ref: _Job, *, retried: bool = False) -> None:
        """Ask BigQuery to stop the job (``jobs.cancel``); one that ended or never started
        has nothing to stop. Once, unless ``retried``: a refusal waits on it (and a job
        past the query timeout is past its own ``job_timeout_ms`` too)."""
        calls = bounded_retries if retried else one_attempt
        with contextlib.suppress(Exception):
            self._client.cancel_job(ref.id, location=ref.location, **calls(self._seconds()))

    def _seconds(self) -> float:
        return self.options.http_timeout_seconds

    def describe(self, table: CatalogTable) -> list[Column]:
        assert table.remote is not None
        seconds = self.options.http_timeout_seconds
        try:
            fields = self._client.get_table(
                table.remote.remote_name.replace("`", ""), **bounded_retries(seconds)
            ).schema
        except Exception as exc:
            refusal = self._refusal(exc, f"could not describe '{table.id}'")
            if refusal is None:
                raise
            raise refusal from None
        return [Column(f.name, column_type(f), f.mode != "REQUIRED") for f in fields]

    def preview(self, table: CatalogTable, rows: int, limits: Limits) -> RemoteResult:
        """``tabledata.list``: BigQuery reads the first rows for free, no query job."""
        assert table.remote is not None
        started = time.perf_counter()
        bounded = bounded_retries(limits.timeout_seconds)
        try:
            remote = self._client.get_table(table.remote.remote_name.replace("`", ""), **bounded)
            listed = self._client.list_rows(remote, max_results=rows, **bounded)
            data = listed.to_arrow(create_bqstorage_client=False)
        except Exception as exc:
            refusal = self._refusal(exc, f"could not list rows of '{table.id}'")
            if refusal is None:
                raise
            raise refusal from None
        result = capped(data, limits, time.perf_counter() - started)
        return RemoteResult.of(result)

    def _refusal(self, exc: Exception, what: str) -> QueryRefused | None:
        """A failed metadata call as a typed refusal (None: not BigQuery's failure)."""

        if credentials_refused(exc):
            return _unusable_credentials(self.options, exc, QueryFailed)
        if not from_bigquery(exc):
            return None
        if retry_later(exc):
            return _busy(exc, QueryFailed, what)
        return QueryFailed(f"BigQuery {what}: {message(exc)}")

    def close(self) -> None:
        self._client.close()


def _dataset_of(table: CatalogTable, project: str) -> str | None:
    """``project.dataset`` of a remote BigQuery table (its project the client's when its
    name has none); None for a table that is not remote."""
    if table.remote is None:
        return None
    parts = [p.strip("`") for p in table.remote.remote_name.split(".")]
    if len(parts) < 2:
        return None
    return f"{parts[-3] if len(parts) > 2 else project}.{parts[-2]}"


def _charged(
    refusal: QueryRefused, bill: tuple[int | None, int | None] | None, job_id: str
) -> QueryRefused:
    """``refusal`` of a job that ran, with what it processed and what BigQuery billed for
    it (``details.bytes_scanned``, ``details.bytes_billed``): the caller's budget is
    charged the bill, and the refusal says so. A bill that could not be read is charged
    nothing (nothing was measured), and the refusal says that, naming the job."""
    if bill is None:
        return refusal
    processed, billed = bill
    if billed is None:
        logger.warning("BigQuery job %s failed and its bill could not be read", job_id)
        added = (
            f"What BigQuery billed for the job ({job_id}) could not be read, so nothing was "
            "charged to your daily budget; the project's job history has its bill."
        )
        details = {**refusal.details, "bytes_billed": None, "bill_unread": True, "job_id": job_id}
    else:
        added = (
            f"BigQuery billed {billed:,} bytes for the job all the same ({processed:,} "
            "processed), charged to your daily budget."
            if billed
            else ""
        )
        details = {**refusal.details, "bytes_scanned": processed, "bytes_billed": billed}
    said = refusal.message.rstrip()
    if added:
        said += ("" if said.endswith(".") else ".") + " " + added
    return type(refusal)(said, hint=refusal.hint, details=details)


def _busy(exc: Exception, kind: type[QueryRefused], what: str) -> QueryRefused:
    """BigQuery said to try later (a rate limit, a quota, an outage), in its own words."""
    return kind(
        f"BigQuery {what}: it is busy or unavailable ({reason(exc) or 'no reason given'}: "
        f"{message(exc)}).",
        hint="Nothing is wrong with the query: run it again in a minute (a quota that is "
        "used up resets later; the admin can raise it in Google Cloud).",
        details={"bigquery_reason": reason(exc)},
    )


def _unusable_credentials(
    options: BigQueryOptions, exc: Exception, kind: type[QueryRefused]
) -> QueryRefused:
    """The server's credentials did not work; never the key or the token endpoint's text."""
    held = f"${options.credentials_env}" if options.credentials_env else "default credentials"
    return kind(
        f"The server's credentials for BigQuery ({held}) did not work: {type(exc).__name__}.",
        hint=f"An admin must check the service-account key in {held}: it may be revoked, "
        "expired or lack the BigQuery roles; the server's log has no more than this.",
    )


def _labels(labels: dict[str, str]) -> dict[str, str]:
    """BigQuery label keys and values: lowercase letters, digits, '_' and '-'; 63 characters."""
    return {
        _LABEL_TEXT.sub("_", k.lower())[:63]: _LABEL_TEXT.sub("_", v.lower())[:63]
        for k, v in labels.items()
    }
