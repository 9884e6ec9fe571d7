"""A local HTTP server that speaks the BigQuery REST shapes, executing on DuckDB.

Built from the public v2 API reference for the calls the official client makes:
``jobs.insert``, ``jobs.query`` (``query_and_wait``), ``jobs.get``, ``jobs.cancel``,
``jobs.getQueryResults``, ``tables.get``, ``datasets.get``, ``datasets.list`` and
``tables.list``.
Values are encoded as the API documents them in ``tabledata.list`` and
``jobs.getQueryResults``: an INTERVAL in its canonical ``[-]Y-M [-]D [-]H:M:S[.F]``, a
RANGE (a DuckDB ``STRUCT("start" T, "end" T)``: T a DATE, TIMESTAMP for DATETIME or
TIMESTAMPTZ for TIMESTAMP) as ``[start, end)`` with ``UNBOUNDED`` for a missing bound.
BigQuery SQL is transpiled to DuckDB with sqlglot. Bytes processed follow BigQuery's rule
(every referenced column, whole table, LIMIT does not reduce it); bytes billed follow its
on-demand rule (processed bytes rounded up to the MB, at least 10 MB per table referenced;
nothing for a query that processes nothing), and ``maximumBytesBilled`` caps those. Every
job that is not a dry run must carry ``maximumBytesBilled``; one that does not is refused
and recorded.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.threaded_server import ThreadedServer

PROJECT = "example-project"
PAGE_ROWS = 1000  # rows per response page (BigQuery's own limit is ~10 MB)
MB = 1024 * 1024
MIN_BILLED_PER_TABLE = 10 * MB
_TYPES = {
    "BIGINT": "INTEGER",
    "INTEGER": "INTEGER",
    "DOUBLE": "FLOAT",
    "VARCHAR": "STRING",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMP",
    "BOOLEAN": "BOOLEAN",
}

# A RANGE's element types, by the DuckDB type of its struct's fields.
_RANGE_ELEMENTS = {"DATE": "DATE", "TIMESTAMP": "DATETIME", "TIMESTAMP WITH TIME ZONE": "TIMESTAMP"}
_RANGE = re.compile(r'STRUCT\("start" ([A-Z ]+), "end" \1\)')


def bq_type(duck: str) -> str:
    """The BigQuery type a DuckDB column type stands for (``RANGE<DATE>`` for a range)."""
    if duck == "INTERVAL":
        return "INTERVAL"
    ranged = _RANGE.fullmatch(duck)
    if ranged and ranged[1] in _RANGE_ELEMENTS:
        return f"RANGE<{_RANGE_ELEMENTS[ranged[1]]}>"
    return _TYPES.get(duck.split("(")[0], "STRING")


def _rows(result: duckdb.DuckDBPyConnection, kinds: list[str]) -> list[tuple[Any, ...]]:
    """The rows of ``result``; through Arrow when one is an INTERVAL (Python's timedelta
    has no months: DuckDB gives one month as 30 days)."""
    if "INTERVAL" not in kinds:
        return result.fetchall()
    table = result.to_arrow_table()
    return [tuple(row.values()) for row in table.to_pylist()]


@dataclass
class FakeBigQuery:
    con: duckdb.DuckDBPyConnection
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    missing_cap: list[str] = field(default_factory=list)
    # Jobs stay RUNNING until cancelled (jobs.cancel), then end as BigQuery ends them:
    # DONE, errorResult "stopped", billed what they processed. ``job_running`` is set when
    # such a job is created.
    never_finish: bool = False
    job_running: threading.Event = field(default_factory=threading.Event)
    # jobs.cancel "will return immediately, and the client will need to poll for the job
    # status to see if the cancel completed": a cancelled job answers this many more
    # jobs.get as RUNNING (its statistics without bytes, as a running job's are) before
    # it is DONE.
    polls_to_stop: int = 2
    # A job over its cap is accepted (jobComplete false) and fails later, its error in the
    # job's status (jobs.get: status.errorResult), as documented for errors that happen
    # after a job is created.
    cap_in_status: bool = False
    # The next jobs.insert creates its job but its answer is lost (a 503), as a network
    # or a proxy can lose it: the client's retry of it is then a duplicate (409).
    lose_insert_answer: bool = False
    # A job that runs and then fails, the error of this reason in its status and what it
    # processed and was billed in its statistics (jobs.get), as a job stopped by its
    # jobTimeoutMs is: "Cancelled jobs may still incur costs".
    fail_after_run: str | None = None
    # Injected errors: (api prefix, HTTP status, reason, times left, calls answered before
    # them); see fail().
    failures: list[list[Any]] = field(default_factory=list)
    # Where BigQuery runs a job the insert did not place: the region of the datasets it
    # reads. A job in a single region (``asia-northeast1``, not the ``US``/``EU``
    # multi-regions) is found by jobs.get, jobs.cancel and jobs.getQueryResults only when
    # they name its ``location``, as the reference says they must; else 404 notFound.
    location: str = "US"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, api: str, status: int, reason: str, *, times: int = 1, after: int = 0) -> None:
        """The next ``times`` calls of ``api`` (``jobs.query``, ``jobs.insert``,
        ``tables.get``, ...), once ``after`` more have been answered, answer ``status``
        with an error of ``reason``, as the error table documents them
        (``rateLimitExceeded`` and ``quotaExceeded`` are 403s, ``jobBackendError`` a 400,
        ``backendError`` a 503)."""
        self.failures.append([api, status, reason, times, after])

    def failure(self, api: str) -> Response | None:
        with self.lock:
            for entry in self.failures:
                if api.startswith(entry[0]) and entry[3] > 0:
                    if entry[4] > 0:  # calls still answered before the failures
                        entry[4] -= 1
                        return None
                    entry[3] -= 1
                    if entry[1] == 200:  # a proxy's or a broken deployment's answer
                        return _unreadable(entry[2])
                    return _error(entry[1], entry[2], f"Injected {entry[2]}")
        return None

    def query_jobs(self, since: int = 0) -> list[dict[str, Any]]:
        """The query jobs asked for from request ``since`` on (dry runs aside), each in the
        shape of a ``jobs.query`` request whichever call asked for it."""
        jobs = []
        for r in self.requests[since:]:
            if r["api"] == "jobs.query" and not r.get("dryRun"):
                jobs.append(r)
            config = r.get("configuration", {})
            if r["api"] == "jobs.insert" and not config.get("dryRun"):
                query = config.get("query", {})
                jobs.append(
                    {
                        "query": query.get("query"),
                        "maximumBytesBilled": query.get("maximumBytesBilled"),
                        "labels": config.get("labels", {}),
                        "jobTimeoutMs": config.get("jobTimeoutMs"),
                        "jobId": r.get("jobReference", {}).get("jobId"),
                    }
                )
        return jobs

    def start_running(self, job_id: str, sql: str) -> None:
        processed = self.bytes_processed(sql)
        self.jobs[job_id] = {
            "running": True,
            "processed": processed,
            "billed": self.bytes_billed(sql, processed),
            "ended": threading.Event(),
            "location": self.location,
        }
        self.job_running.set()

    def located(self, job_id: str, asked: str | None) -> bool:
        """Whether a call asking for job ``job_id`` in ``asked`` (its ``location``
        parameter) finds it: a job in a single region only when asked there."""
        where = str(self.jobs[job_id].get("location", "US"))
        return asked == where or (asked is None and where.upper() in ("US", "EU"))

    def cancel(self, job_id: str) -> None:
        """``jobs.cancel``: a running job ends (DONE, its error reason ``stopped``) after
        ``polls_to_stop`` more jobs.get."""
        job = self.jobs[job_id]
        if job.get("running") and "stopping" not in job:
            job["stopping"] = self.polls_to_stop
            self.polled(job_id)

    def polled(self, job_id: str) -> None:
        """A jobs.get of ``job_id``: a job being stopped comes closer to its end."""
        job = self.jobs[job_id]
        if "stopping" not in job:
            return
        if job["stopping"] > 0:
            job["stopping"] -= 1
            return
        del job["stopping"], job["running"]
        job["failed"] = {
            "reason": "stopped",
            "message": "Job execution was cancelled: User requested cancellation",
        }
        job["ended"].set()

    # --- data ----------------------------------------------------------------------------

    def columns(self, dataset: str, table: str) -> list[tuple[str, str]]:
        with self.lock:
            rows = self.con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? "
                "AND schema_name = ? AND table_name = ?",
                [PROJECT, dataset, table],
            ).fetchall()
        return [(n, bq_type(t)) for n, t in rows]

    def column_bytes(self, dataset: str, table: str) -> dict[str, int]:
        sizes = {}
        for name, kind in self.columns(dataset, table):
            expr = (
                f'coalesce(sum(strlen("{name}"::VARCHAR) + 2), 0)'
                if kind == "STRING"
                else ("count(*)" if kind == "BOOLEAN" else "count(*) * 8")
            )
            with self.lock:
                row = self.con.execute(
                    f'SELECT {expr} FROM "{PROJECT}"."{dataset}"."{table}"'
                ).fetchone()
            sizes[name] = int(row[0]) if row else 0
        return sizes

    def bytes_processed(self, sql: str) -> int:
        tree = sqlglot.parse_one(sql, dialect="bigquery")
        total = 0
        names = {c.name.lower() for c in tree.find_all(exp.Column)}
        star = any(
            isinstance(s, exp.Star) and not isinstance(s.parent, exp.Count)
            for s in tree.find_all(exp.Star)
        )
        for table in tree.find_all(exp.Table):
            dataset, name = table.db, table.name
            if not dataset:
                continue
            for column, size in self.column_bytes(dataset, name).items():
                if star or column.lower() in names:
                    total += size
        return total

    def bytes_billed(self, sql: str, processed: int) -> int:
        """On-demand billing: ``processed`` rounded up to the MB, at least 10 MB for each
        table the query references."""
        if processed == 0:
            return 0
        tables = {
            (t.db, t.name)
            for t in sqlglot.parse_one(sql, dialect="bigquery").find_all(exp.Table)
            if t.db
        }
        rounded = -(-processed // MB) * MB
        return max(rounded, MIN_BILLED_PER_TABLE * len(tables))

    def not_found(self, sql: str) -> JSONResponse | None:
        """A query naming a table that does not exist is a 404 ``notFound`` (as BigQuery
        answers it, dry run or not), not a 400."""
        for table in sqlglot.parse_one(sql, dialect="bigquery").find_all(exp.Table):
            if table.db and not self.columns(table.db, table.name):
                return _error(
                    404,
                    "notFound",
                    f"Not found: Table {PROJECT}:{table.db}.{table.name} was not found in "
                    "location US",
                )
        return None

    def result_schema(self, sql: str) -> list[tuple[str, str]]:
        """What a dry run reports: the result's columns (and an error if the SQL is bad)."""
        duck = sqlglot.transpile(sql, read="bigquery", write="duckdb")[0]
        with self.lock:
            rows = self.con.execute(f"DESCRIBE {duck}").fetchall()
        return [(r[0], bq_type(str(r[1]))) for r in rows]

    def run(self, sql: str) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
        duck = sqlglot.transpile(sql, read="bigquery", write="duckdb")[0]
        with self.lock:
            cursor = self.con.cursor()
            result = cursor.execute(duck)
            names = [d[0] for d in result.description or []]
            kinds = [bq_type(str(d[1])) for d in result.description or []]
            rows = _rows(result, kinds)
            cursor.close()
        return list(zip(names, kinds, strict=True)), rows


def _encode(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "INTERVAL":  # Arrow's (months, days, nanoseconds)
        return _interval(value.months, value.days, value.nanoseconds)
    if kind.startswith("RANGE<"):
        element = kind.removeprefix("RANGE<").removesuffix(">")
        bounds = (_encode(value[b], element) for b in ("start", "end"))
        start, end = ("UNBOUNDED" if b is None else b for b in bounds)
        return f"[{start}, {end})"
    if kind == "DATETIME":
        return value.isoformat()
    if kind == "BOOLEAN":
        return "true" if value else "false"
    if kind == "TIMESTAMP":  # formatOptions.useInt64Timestamp: microseconds since the epoch
        return str(int(value.timestamp() * 1_000_000))
    if kind == "DATE":
        return value.isoformat()
    return str(value)


def _interval(months: int, days: int, nanoseconds: int) -> str:
    """BigQuery's canonical INTERVAL text: ``[-]Y-M [-]D [-]H:M:S[.F]``."""
    years, month = divmod(abs(months), 12)
    seconds, fraction = divmod(abs(nanoseconds) // 1000, 1_000_000)
    hours, rest = divmod(seconds, 3600)
    text = (
        f"{'-' if months < 0 else ''}{years}-{month} {days} "
        f"{'-' if nanoseconds < 0 else ''}{hours}:{rest // 60}:{rest % 60}"
    )
    return text + (f".{fraction:06d}".rstrip("0") if fraction else "")


_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}


def _error(status: int, reason: str, message: str) -> JSONResponse:
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"domain": "global", "reason": reason, "message": message}],
            "status": _STATUS.get(status, "UNAVAILABLE" if status >= 500 else "UNKNOWN"),
        }
    }
    return JSONResponse(body, status_code=status)


def _unreadable(kind: str) -> Response:
    """A 200 the API does not give: ``empty`` (JSON without the resource's fields),
    ``html`` (a proxy's or a captive portal's page)."""
    if kind == "html":
        return Response("<html><body>Please sign in</body></html>", media_type="text/html")
    return JSONResponse({})


def _field(name: str, kind: str) -> dict[str, Any]:
    if kind.startswith("RANGE<"):
        element = kind.removeprefix("RANGE<").removesuffix(">")
        return {
            "name": name,
            "type": "RANGE",
            "mode": "NULLABLE",
            "rangeElementType": {"type": element},
        }
    return {"name": name, "type": kind, "mode": "NULLABLE"}


def create_app(fake: FakeBigQuery) -> Starlette:
    def schema(fields: list[tuple[str, str]]) -> dict[str, Any]:
        return {"fields": [_field(n, t) for n, t in fields]}

    def job_resource(
        job_id: str,
        config: dict[str, Any],
        processed: int,
        billed: int,
        fields: list[tuple[str, str]] | None = None,
        location: str = "US",
    ) -> dict[str, Any]:
        now = str(int(time.time() * 1000))
        return {
            "kind": "bigquery#job",
            "id": f"{PROJECT}:{location}.{job_id}",
            "jobReference": {"projectId": PROJECT, "jobId": job_id, "location": location},
            "configuration": config,
            "status": {"state": "DONE"},
            "statistics": {
                "creationTime": now,
                "startTime": now,
                "endTime": now,
                "totalBytesProcessed": str(processed),
                "query": {
                    "totalBytesProcessed": str(processed),
                    "totalBytesBilled": str(billed),
                    "statementType": "SELECT",
                    **({"schema": schema(fields)} if fields is not None else {}),
                },
            },
        }

    def page(
        fields: list[tuple[str, str]], rows: list[tuple[Any, ...]], start: int, size: int | None
    ) -> dict[str, Any]:
        """One page of rows (BigQuery pages large results; the client follows pageToken)."""
        end = start + min(size or PAGE_ROWS, PAGE_ROWS)
        body: dict[str, Any] = {
            "totalRows": str(len(rows)),
            "rows": [
                {"f": [{"v": _encode(v, k)} for v, (_, k) in zip(row, fields, strict=True)]}
                for row in rows[start:end]
            ],
        }
        if end < len(rows):
            body["pageToken"] = str(end)
        return body

    def execute(
        sql: str, cap: str | None, job_id: str, max_results: int | None
    ) -> dict[str, Any] | JSONResponse:
        if (missing := fake.not_found(sql)) is not None:
            return missing
        processed = fake.bytes_processed(sql)
        billed = fake.bytes_billed(sql, processed)
        if cap is None:
            fake.missing_cap.append(sql)
            return _error(400, "invalid", "Agnes fake: every job must set maximumBytesBilled")
        if billed > int(cap) and fake.cap_in_status:
            failure = {
                "reason": "bytesBilledLimitExceeded",
                "message": f"Query exceeded limit for bytes billed: {cap}. "
                f"{billed} or higher required.",
            }
            fake.jobs[job_id] = {
                "failed": failure,
                "processed": 0,
                "billed": 0,
                "location": fake.location,
            }
            return {
                "kind": "bigquery#queryResponse",
                "jobReference": {"projectId": PROJECT, "jobId": job_id, "location": fake.location},
                "jobComplete": False,
            }
        if billed > int(cap):
            return _error(
                400,
                "bytesBilledLimitExceeded",
                f"Query exceeded limit for bytes billed: {cap}. {billed} or higher required.",
            )
        try:
            fields, rows = fake.run(sql)
        except (duckdb.Error, sqlglot.errors.ParseError) as exc:
            return _error(400, "invalidQuery", str(exc).splitlines()[0])
        if fake.fail_after_run is not None:
            failure = {"reason": fake.fail_after_run, "message": "Job execution was stopped."}
            fake.jobs[job_id] = {
                "failed": failure,
                "processed": processed,
                "billed": billed,
                "location": fake.location,
            }
            return {
                "kind": "bigquery#queryResponse",
                "jobReference": {"projectId": PROJECT, "jobId": job_id, "location": fake.location},
                "jobComplete": False,
            }
        fake.jobs[job_id] = {
            "fields": fields,
            "rows": rows,
            "processed": processed,
            "billed": billed,
            "location": fake.location,
        }
        return {
            "kind": "bigquery#queryResponse",
            "schema": schema(fields),
            "jobReference": {"projectId": PROJECT, "jobId": job_id, "location": fake.location},
            **page(fields, rows, 0, max_results),
            "totalBytesProcessed": str(processed),
            "totalBytesBilled": str(billed),
            "jobComplete": True,
            "cacheHit": False,
        }

    async def jobs_query(request: Request) -> JSONResponse:
        if (injected := fake.failure("jobs.query")) is not None:
            return injected
        body = await request.json()
        fake.requests.append({"api": "jobs.query", **body})
        job_id = f"job_{uuid.uuid4().hex[:12]}"
        if body.get("dryRun"):
            if (missing := fake.not_found(body["query"])) is not None:
                return missing
            processed = fake.bytes_processed(body["query"])
            return JSONResponse(
                {
                    "kind": "bigquery#queryResponse",
                    "jobComplete": True,
                    "totalBytesProcessed": str(processed),
                    "schema": {"fields": []},
                    "jobReference": {"projectId": PROJECT, "location": fake.location},
                }
            )
        if fake.never_finish:
            fake.start_running(job_id, body["query"])
            return JSONResponse(
                {
                    "kind": "bigquery#queryResponse",
                    "jobReference": {
                        "projectId": PROJECT,
                        "jobId": job_id,
                        "location": fake.location,
                    },
                    "jobComplete": False,
                }
            )
        answer = execute(
            body["query"], body.get("maximumBytesBilled"), job_id, body.get("maxResults")
        )
        return answer if isinstance(answer, JSONResponse) else JSONResponse(answer)

    async def jobs_insert(request: Request) -> JSONResponse:
        if (injected := fake.failure("jobs.insert")) is not None:
            return injected
        body = await request.json()
        fake.requests.append({"api": "jobs.insert", **body})
        config = body.get("configuration", {})
        query = config.get("query", {})
        job_id = body.get("jobReference", {}).get("jobId") or f"job_{uuid.uuid4().hex[:12]}"
        if job_id in fake.jobs:
            return _error(409, "duplicate", f"Already Exists: Job {PROJECT}:US.{job_id}")
        if config.get("dryRun"):
            try:
                if (missing := fake.not_found(query["query"])) is not None:
                    return missing
                processed = fake.bytes_processed(query["query"])
                fields = fake.result_schema(query["query"])
            except (duckdb.Error, sqlglot.errors.ParseError) as exc:
                return _error(400, "invalidQuery", str(exc).splitlines()[0])
            return JSONResponse(job_resource(job_id, config, processed, 0, fields))
        if fake.never_finish:
            fake.start_running(job_id, query["query"])
        else:
            answer = execute(query["query"], query.get("maximumBytesBilled"), job_id, None)
            if isinstance(answer, JSONResponse):
                return answer
        if fake.lose_insert_answer:
            fake.lose_insert_answer = False
            return _error(503, "backendError", "The answer was lost on its way")
        # As BigQuery answers an insert: the job as created, its statistics (and its
        # outcome) for jobs.get once it is done.
        resource = job_resource(job_id, config, 0, 0, location=fake.location)
        resource["status"] = {"state": "RUNNING"}
        del resource["statistics"]["query"], resource["statistics"]["endTime"]
        return JSONResponse(resource)

    def job_state(job_id: str) -> dict[str, Any]:
        """The job resource as jobs.get answers it."""
        job = fake.jobs[job_id]
        resource = job_resource(
            job_id, {"query": {}}, job["processed"], job["billed"], location=job["location"]
        )
        if job.get("running"):  # what it processed and bills is known once it is done
            resource["status"] = {"state": "RUNNING"}
            del resource["statistics"]["query"], resource["statistics"]["endTime"]
            del resource["statistics"]["totalBytesProcessed"]
        if job.get("failed"):
            resource["status"] = {
                "state": "DONE",
                "errorResult": job["failed"],
                "errors": [job["failed"]],
            }
        return resource

    async def jobs_get(request: Request) -> JSONResponse:
        job_id = request.path_params["job"]
        fake.requests.append({"api": "jobs.get", "job": job_id})
        if (injected := fake.failure("jobs.get")) is not None:
            return injected
        if job_id not in fake.jobs or not fake.located(
            job_id, request.query_params.get("location")
        ):
            return _error(404, "notFound", f"Not found: Job {PROJECT}:{job_id}")
        fake.polled(job_id)
        return JSONResponse(job_state(job_id))

    def query_results(request: Request) -> JSONResponse:  # on a thread: it may wait
        job = fake.jobs.get(request.path_params["job"])
        if job is None or not fake.located(
            request.path_params["job"], request.query_params.get("location")
        ):
            return _error(404, "notFound", "Not found: Job")
        params = request.query_params
        fake.requests.append({"api": "jobs.getQueryResults", **params})
        if job.get("running") or job.get("failed"):
            wait = min(0.2, int(params.get("timeoutMs", "0")) / 1000)
            if "ended" in job:  # waits as BigQuery does, answering as soon as the job ends
                job["ended"].wait(wait)
            else:
                time.sleep(wait)
            return JSONResponse(
                {
                    "kind": "bigquery#getQueryResultsResponse",
                    "jobComplete": False,
                    "jobReference": {"projectId": PROJECT, "jobId": request.path_params["job"]},
                }
            )
        start = int(params.get("pageToken") or params.get("startIndex") or 0)
        size = int(params["maxResults"]) if "maxResults" in params else None
        return JSONResponse(
            {
                "kind": "bigquery#getQueryResultsResponse",
                "schema": schema(job["fields"]),
                "jobReference": {
                    "projectId": PROJECT,
                    "jobId": request.path_params["job"],
                    "location": job["location"],
                },
                **page(job["fields"], job["rows"], start, size),
                "jobComplete": True,
            }
        )

    async def jobs_cancel(request: Request) -> JSONResponse:
        job_id = request.path_params["job"]
        fake.requests.append({"api": "jobs.cancel", "job": job_id})
        if job_id not in fake.jobs or not fake.located(
            job_id, request.query_params.get("location")
        ):
            return _error(404, "notFound", f"Not found: Job {PROJECT}:{job_id}")
        fake.cancel(job_id)
        return JSONResponse({"kind": "bigquery#jobCancelResponse", "job": job_state(job_id)})

    async def table_get(request: Request) -> JSONResponse:
        if (injected := fake.failure("tables.get")) is not None:
            return injected
        dataset, table = request.path_params["dataset"], request.path_params["table"]
        fields = fake.columns(dataset, table)
        if not fields:
            return _error(404, "notFound", f"Not found: Table {PROJECT}:{dataset}.{table}")
        with fake.lock:
            rows = fake.con.execute(
                f'SELECT count(*) FROM "{PROJECT}"."{dataset}"."{table}"'
            ).fetchone()[0]
        return JSONResponse(
            {
                "kind": "bigquery#table",
                "id": f"{PROJECT}:{dataset}.{table}",
                "tableReference": {"projectId": PROJECT, "datasetId": dataset, "tableId": table},
                "schema": schema(fields),
                "numRows": str(rows),
                "numBytes": str(sum(fake.column_bytes(dataset, table).values())),
                "type": "TABLE",
                "timePartitioning": {"type": "DAY", "field": "event_date"}
                if any(n == "event_date" for n, _ in fields)
                else None,
            }
        )

    async def table_data(request: Request) -> JSONResponse:
        """tabledata.list: a table's first rows, no query job and nothing billed."""
        dataset, table = request.path_params["dataset"], request.path_params["table"]
        fake.requests.append({"api": "tabledata.list", **request.query_params})
        fields = fake.columns(dataset, table)
        if not fields:
            return _error(404, "notFound", f"Not found: Table {PROJECT}:{dataset}.{table}")
        with fake.lock:
            rows = _rows(
                fake.con.execute(
                    f'SELECT * FROM "{PROJECT}"."{dataset}"."{table}" ORDER BY 1 LIMIT 10000'
                ),
                [kind for _, kind in fields],
            )
        params = request.query_params
        start = int(params.get("pageToken") or params.get("startIndex") or 0)
        size = int(params["maxResults"]) if "maxResults" in params else None
        return JSONResponse({"kind": "bigquery#tableDataList", **page(fields, rows, start, size)})

    async def datasets_list(request: Request) -> JSONResponse:
        if (injected := fake.failure("datasets.list")) is not None:
            return injected
        with fake.lock:
            names = [
                r[0]
                for r in fake.con.execute(
                    "SELECT DISTINCT schema_name FROM duckdb_tables() WHERE database_name = ? ORDER BY 1",
                    [PROJECT],
                ).fetchall()
            ]
        return JSONResponse(
            {
                "kind": "bigquery#datasetList",
                "datasets": [
                    {
                        "kind": "bigquery#dataset",
                        "id": f"{PROJECT}:{n}",
                        "datasetReference": {"projectId": PROJECT, "datasetId": n},
                        "location": fake.location,
                    }
                    for n in names
                ],
            }
        )

    async def dataset_get(request: Request) -> JSONResponse:
        dataset = request.path_params["dataset"]
        fake.requests.append({"api": "datasets.get", "dataset": dataset})
        with fake.lock:
            found = fake.con.execute(
                "SELECT 1 FROM duckdb_tables() WHERE database_name = ? AND schema_name = ?",
                [PROJECT, dataset],
            ).fetchone()
        if found is None:
            return _error(404, "notFound", f"Not found: Dataset {PROJECT}:{dataset}")
        return JSONResponse(
            {
                "kind": "bigquery#dataset",
                "id": f"{PROJECT}:{dataset}",
                "datasetReference": {"projectId": PROJECT, "datasetId": dataset},
                "location": fake.location,
            }
        )

    async def tables_list(request: Request) -> JSONResponse:
        dataset = request.path_params["dataset"]
        with fake.lock:
            names = [
                r[0]
                for r in fake.con.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = ? ORDER BY 1",
                    [PROJECT, dataset],
                ).fetchall()
            ]
        return JSONResponse(
            {
                "kind": "bigquery#tableList",
                "totalItems": len(names),
                "tables": [
                    {
                        "kind": "bigquery#table",
                        "id": f"{PROJECT}:{dataset}.{n}",
                        "type": "TABLE",
                        "tableReference": {
                            "projectId": PROJECT,
                            "datasetId": dataset,
                            "tableId": n,
                        },
                    }
                    for n in names
                ],
            }
        )

    base = "/bigquery/v2/projects/{project}"
    return Starlette(
        routes=[
            Route(base + "/queries", jobs_query, methods=["POST"]),
            Route(base + "/queries/{job}", query_results, methods=["GET"]),
            Route(base + "/jobs", jobs_insert, methods=["POST"]),
            Route(base + "/jobs/{job}", jobs_get, methods=["GET"]),
            Route(base + "/jobs/{job}/cancel", jobs_cancel, methods=["POST"]),
            Route(base + "/datasets", datasets_list, methods=["GET"]),
            Route(base + "/datasets/{dataset}", dataset_get, methods=["GET"]),
            Route(base + "/datasets/{dataset}/tables", tables_list, methods=["GET"]),
            Route(base + "/datasets/{dataset}/tables/{table}", table_get, methods=["GET"]),
            Route(base + "/datasets/{dataset}/tables/{table}/data", table_data, methods=["GET"]),
        ]
    )


class FakeBigQueryServer(ThreadedServer):
    """The fake on 127.0.0.1 and a free port, in a thread."""

    def __init__(self, rows: int = 20_000) -> None:
        con = duckdb.connect()
        con.execute(f"ATTACH ':memory:' AS \"{PROJECT}\"")
        con.execute(f'CREATE SCHEMA "{PROJECT}".analytics')
        con.execute(
            f'CREATE TABLE "{PROJECT}".analytics.page_views AS SELECT range AS view_id, '
            "DATE '2026-01-01' + (range % 300)::INTEGER AS event_date, "
            "['/', '/pricing', '/docs'][1 + range % 3] AS page, range % 500 AS visitor_id, "
            f"(range % 7) * 1.5 AS seconds, range % 10 = 0 AS converted FROM range({rows})"
        )
        self.fake = FakeBigQuery(con)
        super().__init__(create_app(self.fake))
