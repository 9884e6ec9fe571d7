"""BigQuery, through the official client against a local server speaking its REST API:
the connector, remote queries in BigQuery SQL, dry-run estimates, the billing cap on
every job, snapshots with BigQuery predicates."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pytest

from agnes_mcp.query.budget import CAP_KEYS
from agnes_mcp.rails.engine import Estimate
from agnes_mcp.resource_types import ResourceType
from agnes_sync.connector import SourceContext, TableRequest
from agnes_sync.contract import ExtractWriter
from agnes_sync.errors import (
    InvalidTableSpec,
    SourceTableNotFound,
    TerminalSyncError,
    TransientSyncError,
)
from agnes_sync.extract_reader import read_extract
from connectors.bigquery import connector as bigquery_connector
from connectors.bigquery.connector import BigQueryConnector
from tests.conftest import LiveServer, add_user, register, running_server, token_for
from tests.fake_bigquery import MB, MIN_BILLED_PER_TABLE, PROJECT, FakeBigQueryServer
from tests.test_api_http import assert_error

AGGREGATE = "SELECT page, count(*) AS n FROM {} GROUP BY page ORDER BY page"
# A call whose retries end with its (sub-second) timeouts, as the client library's ran on
# for 10 minutes (40 for a job) before: a minute tells the two apart on any machine. A few
# seconds did not: the timed call includes the client library's first import, 7-9 s on a
# busy machine.
BOUNDED_BY_THE_TIMEOUTS = 60


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBigQueryServer]:
    with FakeBigQueryServer(rows=3000) as server:
        yield server


def options(fake: FakeBigQueryServer) -> dict[str, object]:
    return {"project": PROJECT, "api_endpoint": fake.url, "anonymous": True, "alias": "bq"}


@dataclass
class Deployment:
    live: LiveServer
    analyst_token: str

    def analyst(self) -> httpx.Client:
        return self.live.client(self.analyst_token)

    def admin(self) -> httpx.Client:
        return self.live.client(self.live.admin_token)


@pytest.fixture(scope="module")
def deployment(
    fake: FakeBigQueryServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("bigquery")
    csv = root / "files" / "pages.csv"
    csv.parent.mkdir()
    csv.write_text("page,title\n/,Home\n/pricing,Pricing\n/docs,Docs\n")
    sources = {
        "bq": {"connector": "bigquery", "options": options(fake)},
        "files": {"connector": "files", "options": {"path": str(csv.parent)}},
    }
    with running_server(root / "data", sources=sources, scheduler_enabled=False) as live:
        services = live.services
        register(
            services,
            id="page_views",
            source_type="bq",
            bucket="analytics",
            source_table="page_views",
            query_mode="remote",
            partition_by="event_date",
        )
        register(services, id="pages", source_type="files", source_table="pages.csv")
        results = services.sync.sync_many(["page_views", "pages"], "test")
        assert all(r.status == "ok" for r in results), [r.error for r in results]
        group = services.groups.add("bq-analysts", "BigQuery readers")
        for table in ("page_views", "pages"):
            services.grants.add(group.id, ResourceType.TABLE, table, granted_by="test")
        analyst = add_user(services, groups=(group.id,))
        yield Deployment(live, token_for(services, analyst))


@pytest.fixture
def analyst(deployment: Deployment) -> Iterator[httpx.Client]:
    with deployment.analyst() as client:
        yield client


@pytest.fixture
def admin(deployment: Deployment) -> Iterator[httpx.Client]:
    with deployment.admin() as client:
        yield client
        client.put("/api/admin/server-config", json={"scan_caps": dict.fromkeys(CAP_KEYS)})


# --- the connector ------------------------------------------------------------------------------


@pytest.fixture
def connector(fake: FakeBigQueryServer, tmp_path: Path) -> BigQueryConnector:
    return BigQueryConnector(SourceContext("bq", options(fake), tmp_path))


def test_connector_lists_and_describes(connector: BigQueryConnector) -> None:
    assert [(t.bucket, t.source_table) for t in connector.list_tables()] == [
        ("analytics", "page_views")
    ]
    request = TableRequest(id="pv", bucket="analytics", source_table="page_views")
    columns = connector.describe_table(request)
    assert [(c.name, c.type) for c in columns][:3] == [
        ("view_id", "INTEGER"),
        ("event_date", "DATE"),
        ("page", "STRING"),
    ]
    with pytest.raises(SourceTableNotFound, match=r"analytics\.nope"):
        connector.describe_table(TableRequest(id="x", bucket="analytics", source_table="nope"))
    with pytest.raises(InvalidTableSpec):
        connector.describe_table(TableRequest(id="x", bucket="a.b", source_table="page_views"))


def test_a_source_query_reading_a_missing_table_says_so(
    connector: BigQueryConnector, tmp_path: Path
) -> None:
    """BigQuery answers 404 notFound for a query naming a table it does not have; the
    materialized table has no dataset of its own, and was told it needed one."""
    request = TableRequest(
        id="m", query_mode="materialized", source_query="SELECT * FROM analytics.missing"
    )
    for call in (
        lambda: connector.describe_table(request),
        lambda: connector.extract(request, ExtractWriter(tmp_path / "extracts", "bq")),
    ):
        with pytest.raises(SourceTableNotFound, match=r"analytics\.missing was not found") as e:
            call()
        assert "source_query" in e.value.message and "http" not in e.value.message


@pytest.mark.parametrize(
    ("status", "reason", "transient"),
    [
        (403, "rateLimitExceeded", True),  # a 403, and worth retrying
        (403, "quotaExceeded", True),
        (400, "jobBackendError", True),
        (503, "backendError", True),
        (403, "accessDenied", False),
    ],
)
def test_sync_failures_are_tagged_by_bigquerys_reason(
    fake: FakeBigQueryServer, tmp_path: Path, status: int, reason: str, transient: bool
) -> None:
    """BigQuery's error table: the reason says whether to retry, not the HTTP status. The
    client's own retries end with the source's timeouts (they ran for 10 minutes)."""
    settings = {**options(fake), "http_timeout_seconds": 0.3, "job_timeout_seconds": 0.3}
    connector = BigQueryConnector(SourceContext("bq", settings, tmp_path))
    writer = ExtractWriter(tmp_path / "extracts", "bq")
    remote = TableRequest(
        id="pv", bucket="analytics", source_table="page_views", query_mode="remote"
    )
    materialized = TableRequest(id="m", query_mode="materialized", source_query="SELECT 1 AS one")
    fake.fake.fail("tables.get", status, reason, times=10**6)
    fake.fake.fail("jobs.query", status, reason, times=10**6)
    started = time.monotonic()
    try:
        for request in (remote, materialized):
            with pytest.raises(TerminalSyncError if not transient else TransientSyncError) as e:
                connector.extract(request, writer)
            assert e.value.transient is transient and reason in e.value.message + str(
                e.value.details
            )
            assert "http" not in e.value.message
    finally:
        fake.fake.failures.clear()
    assert time.monotonic() - started < BOUNDED_BY_THE_TIMEOUTS


def test_bignumeric_materializes_with_every_digit(tmp_path: Path) -> None:
    """BIGNUMERIC arrives as decimal256; DuckDB would read that parquet column as DOUBLE."""
    from decimal import Decimal

    import pyarrow.parquet as pq

    from agnes_sync.wide_decimals import exact_decimals

    value = Decimal("12345678901234567890.12345678901234567890123456789012345678")
    table = pa.table(
        {
            "big": pa.array([value, None], pa.decimal256(76, 38)),
            "n": pa.array([Decimal("1.5"), None], pa.decimal128(38, 9)),
        }
    )
    exact, named = exact_decimals(table)
    assert named == ["big DECIMAL(76,38)"]
    pq.write_table(exact, tmp_path / "t.parquet")
    got = duckdb.sql(f"SELECT big, n FROM '{tmp_path / 't.parquet'}'").fetchall()
    assert got == [(str(value), Decimal("1.500000000")), (None, None)]


def test_a_bigquery_table_is_never_registered_as_local(connector: BigQueryConnector) -> None:
    """It would be published remote all the same (sync-status saying local, the workspace
    saying remote): refused, naming the two modes it can be."""
    from agnes_sync.errors import ConnectorCapabilityMissing

    local = TableRequest(id="pv", bucket="analytics", source_table="page_views")
    with pytest.raises(ConnectorCapabilityMissing, match=r"remote .* or materialized"):
        connector.check_supported(local)
    connector.check_supported(
        TableRequest(id="pv", bucket="analytics", source_table="page_views", query_mode="remote")
    )


def test_connector_remote_table_records_metadata_only(
    connector: BigQueryConnector, tmp_path: Path
) -> None:
    writer = ExtractWriter(tmp_path / "extracts", "bq")
    request = TableRequest(
        id="page_views", bucket="analytics", source_table="page_views", query_mode="remote"
    )
    published = connector.extract(request, writer)
    assert published.rows == 3000 and published.size_bytes > 0 and published.files == []
    table = read_extract(writer.paths, strict=True).tables["page_views"]
    assert table.remote is not None
    assert (table.remote.engine, table.remote.url, table.remote.remote_name) == (
        "bigquery",
        PROJECT,
        f"{PROJECT}.analytics.page_views",
    )


def test_connector_materializes_under_a_billing_cap(
    connector: BigQueryConnector, fake: FakeBigQueryServer, tmp_path: Path
) -> None:
    writer = ExtractWriter(tmp_path / "extracts", "bq")
    request = TableRequest(
        id="by_page",
        query_mode="materialized",
        source_query="SELECT page, COUNT(*) AS n FROM `example-project.analytics.page_views` "
        "GROUP BY page ORDER BY page",
    )
    assert [c.name for c in connector.describe_table(request)] == ["page", "n"]  # a dry run
    published = connector.extract(request, writer)
    assert published.rows == 3 and len(published.files) == 1
    con = duckdb.connect(str(writer.paths.db), read_only=True)
    assert con.execute("SELECT page, n FROM by_page ORDER BY page").fetchall() == [
        ("/", 1000),
        ("/docs", 1000),
        ("/pricing", 1000),
    ]
    con.close()
    assert fake.fake.missing_cap == []


def test_materialized_intervals_and_ranges_land_as_bigquery_gives_them(
    connector: BigQueryConnector, fake: FakeBigQueryServer, tmp_path: Path
) -> None:
    """INTERVAL and RANGE<DATE|DATETIME|TIMESTAMP> columns, as getQueryResults gives them
    (``1-2 3 4:5:6.789``; ``[2020-01-01, UNBOUNDED)``). An INTERVAL failed the sync
    with pyarrow's "Unhandled type for Arrow to Parquet schema conversion"; a range lands as
    its start and end (NULL: unbounded), an interval finer than parquet's milliseconds as
    its exact text, which the sync's notes say."""
    table = f'"{PROJECT}".analytics.spans'
    with fake.fake.lock:
        fake.fake.con.execute(
            f"CREATE TABLE {table} AS SELECT * FROM (VALUES "
            "(1, INTERVAL '14 months 3 days 04:05:06.789', "
            "{'start': DATE '2020-01-01', 'end': NULL::DATE}, "
            "{'start': TIMESTAMP '2020-01-01 10:00:00', 'end': TIMESTAMP '2020-01-02 00:00:00.5'}, "
            "{'start': TIMESTAMPTZ '2020-01-01 10:00:00+00', 'end': TIMESTAMPTZ '2021-01-01'}), "
            "(2, INTERVAL '-1 day 00:00:00.000001', NULL, NULL, NULL)) AS t(id, i, d, dt, ts)"
        )
    writer = ExtractWriter(tmp_path / "extracts", "bq")
    request = TableRequest(
        id="spans",
        query_mode="materialized",
        source_query=f"SELECT * FROM `{PROJECT}.analytics.spans` ORDER BY id",
    )
    try:
        published = connector.extract(request, writer)
    finally:
        with fake.fake.lock:
            fake.fake.con.execute(f"DROP TABLE {table}")
    assert published.rows == 2
    assert any("exact text" in n and "i" in n for n in published.notes), published.notes
    con = duckdb.connect(str(writer.paths.db), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    got = con.execute(
        "SELECT i, d.start, d.end, dt.start, dt.end, ts.start::VARCHAR, ts.end::VARCHAR "
        "FROM spans ORDER BY id"
    ).fetchall()
    con.close()
    assert got == [
        (
            "1 year 2 months 3 days 04:05:06.789",
            date(2020, 1, 1),
            None,
            datetime(2020, 1, 1, 10),
            datetime(2020, 1, 2, 0, 0, 0, 500000),
            "2020-01-01 10:00:00+00",
            "2021-01-01 00:00:00+00",
        ),
        ("-1 day 00:00:00.000001", None, None, None, None, None, None),
    ]


def test_a_materialized_query_that_never_ends_fails_its_sync_in_time(
    fake: FakeBigQueryServer, tmp_path: Path
) -> None:
    """A job that never finished held a sync worker for ever (two held every sync): the
    source's job_timeout_seconds bounds it, BigQuery is told to stop the job too, and the
    sync fails as worth retrying, naming the limit."""
    connector = BigQueryConnector(
        SourceContext("bq", {**options(fake), "job_timeout_seconds": 1}, tmp_path)
    )
    request = TableRequest(
        id="slow",
        query_mode="materialized",
        source_query=f"SELECT page FROM `{PROJECT}.analytics.page_views`",
    )
    fake.fake.never_finish = True
    try:
        with pytest.raises(TransientSyncError, match="longer than 1 s") as failed:
            connector.extract(request, ExtractWriter(tmp_path / "extracts", "bq"))
    finally:
        fake.fake.never_finish = False
    assert "job_timeout_seconds" in str(failed.value) and failed.value.details == {
        "limit_seconds": 1
    }
    jobs = [r for r in fake.fake.requests if r["api"] == "jobs.query"]
    assert jobs[-1]["jobTimeoutMs"] == "1000"


# --- remote queries -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "page_views",
        f"`{PROJECT}.analytics.page_views`",
        f"`{PROJECT}`.analytics.page_views",
        "analytics.page_views",
        "bq.analytics.page_views",
    ],
)
def test_remote_query_by_id_or_any_path(analyst: httpx.Client, name: str) -> None:
    response = analyst.post("/api/query", json={"sql": AGGREGATE.format(name), "mode": "remote"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rows"] == [["/", 1000], ["/docs", 1000], ["/pricing", 1000]]
    assert body["provenance"]["engine"] == "bigquery"
    assert body["provenance"]["tables"][0]["id"] == "page_views"
    assert body["bytes_scanned"] > 0


def test_auto_mode_sends_bigquery_sql_to_bigquery(analyst: httpx.Client) -> None:
    sql = (
        "SELECT FORMAT_DATE('%Y-%m', event_date) AS month, COUNT(*) AS n "
        f"FROM `{PROJECT}.analytics.page_views` "
        "WHERE event_date >= DATE_SUB(DATE '2026-03-01', INTERVAL 10 DAY) "
        "GROUP BY month ORDER BY month"
    )
    body = analyst.post("/api/query", json={"sql": sql}).json()
    assert body["provenance"]["engine"] == "bigquery", body
    assert body["rows"][0][0] == "2026-02"


def test_estimate_is_a_dry_run_that_matches_what_is_billed(
    analyst: httpx.Client, fake: FakeBigQueryServer
) -> None:
    narrow = "SELECT page FROM page_views"
    wide = "SELECT page, visitor_id, seconds FROM page_views"
    estimates = [
        analyst.post("/api/query/estimate", json={"sql": sql}).json() for sql in (narrow, wide)
    ]
    assert estimates[0]["engine"] == "bigquery" and estimates[0]["detail"]["dry_run"] is True
    assert 0 < estimates[0]["estimated_scan_bytes"] < estimates[1]["estimated_scan_bytes"]
    dry_runs = [r for r in fake.fake.requests if r.get("configuration", {}).get("dryRun")]
    assert dry_runs and all(r["configuration"]["query"]["useQueryCache"] is False for r in dry_runs)
    body = analyst.post("/api/query", json={"sql": wide, "limit": 10}).json()
    assert body["bytes_scanned"] == estimates[1]["estimated_scan_bytes"]
    assert body["truncated"] is True and body["row_count"] == 10


def test_a_query_is_charged_what_bigquery_billed(
    deployment: Deployment, analyst: httpx.Client
) -> None:
    """BigQuery bills the bytes processed rounded up to the MB, and at least 10 MB for each
    table read (the first TB a month aside): the budget was charged the bytes processed, a
    few KB here, and the answer named no bill."""
    services = deployment.live.services
    principal = services.tokens.authenticate(deployment.analyst_token)
    before = services.query.budget.remaining(principal)
    sql = "SELECT page FROM page_views /* billed test */"
    response = analyst.post("/api/query", json={"sql": sql, "limit": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    services.write_behind.flush()  # the audit row the day's spend is counted from again
    audited = [r for r in services.audit_log.recent(limit=20) if r.params.get("sql") == sql]
    assert audited[0].params["bytes_billed"] == MIN_BILLED_PER_TABLE
    assert 0 < body["bytes_scanned"] < MB  # what BigQuery processed, as the dry run said
    assert body["bytes_billed"] == MIN_BILLED_PER_TABLE
    assert before - services.query.budget.remaining(principal) == MIN_BILLED_PER_TABLE
    assert body["remaining_budget_bytes"] == services.query.budget.remaining(principal)


def test_a_job_that_fails_after_it_ran_is_charged_what_bigquery_billed(
    deployment: Deployment, analyst: httpx.Client, fake: FakeBigQueryServer
) -> None:
    """The client library's error has no job statistics: a job BigQuery stopped after it
    had read (its jobTimeoutMs here; "cancelled jobs may still incur costs") was charged
    nothing. The failed job's statistics are looked up (jobs.get), charged, and said."""
    services = deployment.live.services
    principal = services.tokens.authenticate(deployment.analyst_token)
    before = services.query.budget.remaining(principal)
    fake.fake.fail_after_run = "timeout"
    sql = "SELECT page FROM page_views /* failed billed test */"
    try:
        error = assert_error(analyst.post("/api/query", json={"sql": sql}), 400, "query_failed")
    finally:
        fake.fake.fail_after_run = None
    services.write_behind.flush()  # the audit row the day's spend is counted from again
    audited = [r for r in services.audit_log.recent(limit=20) if r.params.get("sql") == sql]
    assert audited[0].params["bytes_billed"] == MIN_BILLED_PER_TABLE
    assert error["details"]["bytes_billed"] == MIN_BILLED_PER_TABLE
    assert 0 < error["details"]["bytes_scanned"] < MB
    assert f"billed {MIN_BILLED_PER_TABLE:,} bytes" in error["message"]
    assert before - services.query.budget.remaining(principal) == MIN_BILLED_PER_TABLE


def test_a_failed_job_whose_bill_cannot_be_read_says_so(
    deployment: Deployment, analyst: httpx.Client, fake: FakeBigQueryServer
) -> None:
    """A job that failed after it ran, and whose jobs.get then failed too, was charged 0
    and the refusal said nothing of it. Nothing was measured, so nothing is charged; the
    refusal says the bill could not be read and names the job for the project's history."""
    services = deployment.live.services
    principal = services.tokens.authenticate(deployment.analyst_token)
    before = services.query.budget.remaining(principal)
    fake.fake.fail_after_run = "timeout"
    # the library reads the failed job once (its error); the bill is read after that
    fake.fake.fail("jobs.get", 503, "backendError", after=1)
    sql = "SELECT page FROM page_views /* failed unread bill test */"
    try:
        error = assert_error(analyst.post("/api/query", json={"sql": sql}), 400, "query_failed")
    finally:
        fake.fake.fail_after_run = None
        fake.fake.failures.clear()
    job = fake.fake.query_jobs()[-1]["jobId"]
    assert error["details"]["bill_unread"] is True and error["details"]["job_id"] == job
    assert error["details"]["bytes_billed"] is None
    assert f"billed for the job ({job}) could not be read" in error["message"]
    assert "nothing was charged" in error["message"]
    assert before == services.query.budget.remaining(principal)


def test_large_results_are_paged_and_capped(
    analyst: httpx.Client, fake: FakeBigQueryServer
) -> None:
    before = len(fake.fake.requests)
    sql = "SELECT view_id FROM page_views ORDER BY view_id"
    body = analyst.post("/api/query", json={"sql": sql, "limit": 2500}).json()
    assert [r[0] for r in body["rows"]] == list(range(2500))
    assert body["truncated"] is True and body["truncation"]["reason"] == "rows"
    calls = [r["api"] for r in fake.fake.requests[before:]]
    assert calls.count("jobs.getQueryResults") >= 2  # pages 2 and 3 of 2,501 rows


def test_every_job_carries_the_billing_cap_and_labels(
    analyst: httpx.Client, admin: httpx.Client, fake: FakeBigQueryServer
) -> None:
    admin.put("/api/admin/server-config", json={"scan_caps": {"per_query_bytes": 10_000_000}})
    before = len(fake.fake.requests)
    assert (
        analyst.post("/api/query", json={"sql": "SELECT COUNT(*) FROM page_views"}).status_code
        == 200
    )
    jobs = fake.fake.query_jobs(before)
    assert len(jobs) == 1
    assert jobs[0]["maximumBytesBilled"] == "10000000"
    assert set(jobs[0]["labels"]) == {"agnes_user", "agnes_query"}
    assert fake.fake.missing_cap == []


def test_bigquery_itself_refuses_past_the_cap(
    deployment: Deployment,
    analyst: httpx.Client,
    admin: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Even an estimate that is wrong cannot bill past the cap: the job carries it."""
    admin.put("/api/admin/server-config", json={"scan_caps": {"per_query_bytes": 100}})
    services = deployment.live.services
    snapshot = services.query.catalog.current()
    engine = services.query.engine_for(snapshot.tables["page_views"], snapshot.version)
    monkeypatch.setattr(engine, "estimate", lambda tree, tables: Estimate(scan_bytes=1))
    principal = services.tokens.authenticate(deployment.analyst_token)
    spent = services.query.budget.remaining(principal)
    error = assert_error(
        analyst.post("/api/query", json={"sql": "SELECT page FROM page_views"}),
        400,
        "remote_scan_too_large",
    )
    assert "100" in error["message"] and error["details"]["limit_bytes"] == 100
    assert services.query.budget.remaining(principal) == spent  # nothing was charged


def test_warehouse_errors_are_typed_and_leak_no_endpoint(analyst: httpx.Client) -> None:
    error = assert_error(
        analyst.post("/api/query", json={"sql": "SELECT no_such_column FROM page_views"}),
        400,
        "query_failed",
    )
    assert "BigQuery refused" in error["message"] and "billed" not in error["message"]
    assert "127.0.0.1" not in error["message"] and "http" not in error["message"]


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        (f"SELECT * FROM `{PROJECT}.analytics.secret_salaries`", "path_not_registered"),
        ("SELECT * FROM `other-project.analytics.page_views`", "path_not_registered"),
        ("DELETE FROM page_views WHERE TRUE", "read_only"),
        ("SELECT p.page, t.title FROM page_views p JOIN pages t USING (page)", "mixed_engines"),
        (
            "SELECT * FROM EXTERNAL_QUERY('example-project.us.conn', 'SELECT 1')",
            "function_not_allowed",
        ),
    ],
)
def test_bigquery_sql_goes_through_the_rails(analyst: httpx.Client, sql: str, code: str) -> None:
    response = analyst.post("/api/query", json={"sql": sql, "mode": "auto"})
    assert response.status_code in (400, 403, 404), response.text
    assert response.json()["error"]["code"] == code, response.text


@pytest.mark.parametrize(
    "sql",
    [
        # BigQuery reads one triple-quoted string; DuckDB a string, a subquery calling
        # current_setting() and another string. apply(...) is DuckDB's, which the rails'
        # DuckDB parser reads as a keyword: only the BigQuery reading parsed.
        "SELECT ''' ', (SELECT current_setting('allowed_paths')::VARCHAR || "
        "apply([1], lambda x: x)[1]), ' ''' AS v",
        # BigQuery's # comment: DuckDB reads a positional column and the rest of the line
        "SELECT * FROM pages WHERE page IN (SELECT #1 FROM (SELECT version() || "
        "apply([1], lambda x: x)[1])\n)",
    ],
)
def test_sql_only_bigquery_reads_never_runs_on_the_server(analyst: httpx.Client, sql: str) -> None:
    """A query DuckDB's rails could not parse was tried in BigQuery's dialect; read there as
    a query of server tables only, it ran on the server's DuckDB, which reads the text its
    own way: what only DuckDB saw (here a settings read) was never checked."""
    response = analyst.post("/api/query", json={"sql": sql})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "sql_parse_error", response.text


def test_a_job_that_does_not_finish_in_time_is_a_typed_timeout(
    fake: FakeBigQueryServer,
) -> None:
    import sqlglot

    from agnes_mcp.rails.refusals import QueryTimeout
    from agnes_mcp.rails.sandbox import Limits
    from connectors.bigquery.client import BigQueryOptions
    from connectors.bigquery.engine import BigQueryEngine

    engine = BigQueryEngine(BigQueryOptions.model_validate(options(fake)))
    tree = sqlglot.parse_one(f"SELECT page FROM `{PROJECT}.analytics.page_views`", "bigquery")
    fake.fake.never_finish = True
    started = time.monotonic()
    try:
        with pytest.raises(QueryTimeout, match="longer than 1 s") as timed_out:
            engine.execute(
                tree,
                [],
                limits=Limits(rows=10, bytes=10**6, timeout_seconds=1),
                max_bytes=10**9,
                labels={},
            )
    finally:
        fake.fake.never_finish = False
        engine.close()
    assert time.monotonic() - started < BOUNDED_BY_THE_TIMEOUTS
    jobs = fake.fake.query_jobs()
    assert jobs[-1]["jobTimeoutMs"] == "1000"  # BigQuery stops the job itself too
    # and is told to stop it now, no one waiting for it; it is charged what it billed,
    # read once it has stopped (a cancel returns at once, the job stops later: its
    # statistics had no bytes yet, and it was charged nothing)
    job_id = jobs[-1]["jobId"]
    assert {"api": "jobs.cancel", "job": job_id} in fake.fake.requests
    assert fake.fake.jobs[job_id]["failed"]["reason"] == "stopped"
    assert timed_out.value.details["bytes_billed"] == MIN_BILLED_PER_TABLE


def _cancelled_while_running(fake: FakeBigQueryServer, engine: Any, timeout: float) -> Any:
    """The refusal of a query on ``engine`` whose caller gave up while its job ran (the
    job never finishes on its own; the fake signals when it runs)."""
    import sqlglot

    from agnes_mcp.rails.refusals import QueryRefused
    from agnes_mcp.rails.sandbox import Limits
    from agnes_sync.caller import CALLER, Caller

    tree = sqlglot.parse_one(f"SELECT page FROM `{PROJECT}.analytics.page_views`", "bigquery")
    caller = Caller()
    refused: list[QueryRefused] = []

    def run() -> None:
        CALLER.set(caller)
        limits = Limits(rows=10, bytes=10**6, timeout_seconds=timeout)
        try:
            engine.execute(tree, [], limits=limits, max_bytes=10**9, labels={})
        except QueryRefused as refusal:
            refused.append(refusal)

    fake.fake.never_finish = True
    fake.fake.job_running.clear()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert fake.fake.job_running.wait(30)
        assert caller.cancel() == 1  # the job, registered with its caller
        thread.join(30)
    finally:
        fake.fake.never_finish = False
    assert not thread.is_alive() and len(refused) == 1
    return refused[0]


def test_a_caller_that_gives_up_stops_the_bigquery_job(fake: FakeBigQueryServer) -> None:
    """A cancelled call (an MCP client's notifications/cancelled) stopped the queries the
    watchdog watches, but a BigQuery job ran on in BigQuery until job_timeout_seconds,
    billing. The job registers with the caller: a cancel stops it (jobs.cancel) at once."""
    from agnes_mcp.rails.refusals import QueryCancelled
    from connectors.bigquery.client import BigQueryOptions
    from connectors.bigquery.engine import BigQueryEngine

    engine = BigQueryEngine(BigQueryOptions.model_validate(options(fake)))
    try:
        refused = _cancelled_while_running(fake, engine, timeout=60)
    finally:
        engine.close()
    assert isinstance(refused, QueryCancelled) and refused.code == "query_cancelled"
    job_id = fake.fake.query_jobs()[-1]["jobId"]
    assert {"api": "jobs.cancel", "job": job_id} in fake.fake.requests
    assert fake.fake.jobs[job_id]["failed"]["reason"] == "stopped"  # stopped in BigQuery
    assert refused.details["bytes_billed"] == MIN_BILLED_PER_TABLE  # and charged its bill


def test_a_job_in_a_single_region_is_stopped_and_billed_there(fake: FakeBigQueryServer) -> None:
    """A source without a ``location`` option runs its jobs where its datasets are; in a
    single region (``asia-northeast1``), jobs.cancel and jobs.get find the job only when
    told its location. They were not: a cancelled call's job ran on in BigQuery (the
    cancel a 404, swallowed) and a failed job was charged nothing. The location the
    insert answered is used."""
    import sqlglot

    from agnes_mcp.rails.refusals import QueryCancelled, QueryFailed
    from agnes_mcp.rails.sandbox import Limits
    from connectors.bigquery.client import BigQueryOptions
    from connectors.bigquery.engine import BigQueryEngine

    engine = BigQueryEngine(BigQueryOptions.model_validate(options(fake)))
    tree = sqlglot.parse_one(f"SELECT page FROM `{PROJECT}.analytics.page_views`", "bigquery")
    fake.fake.location = "asia-northeast1"
    try:
        refused = _cancelled_while_running(fake, engine, timeout=20)
        fake.fake.fail_after_run = "timeout"  # a job BigQuery stopped after it had read
        limits = Limits(rows=10, bytes=10**6, timeout_seconds=20)
        with pytest.raises(QueryFailed) as failed:
            engine.execute(tree, [], limits=limits, max_bytes=10**9, labels={})
    finally:
        fake.fake.location = "US"
        fake.fake.fail_after_run = None
        engine.close()
    assert isinstance(refused, QueryCancelled)
    cancelled = fake.fake.query_jobs()[-2]["jobId"]
    assert fake.fake.jobs[cancelled]["failed"]["reason"] == "stopped"  # stopped in BigQuery
    assert refused.details["bytes_billed"] == MIN_BILLED_PER_TABLE
    assert failed.value.details["bytes_billed"] == MIN_BILLED_PER_TABLE


def test_an_insert_whose_answer_was_lost_runs_its_job_once(
    analyst: httpx.Client, fake: FakeBigQueryServer
) -> None:
    """The job has Agnes's id, and the client library gives up on a given id whose insert
    it retried into a 409 (the first insert made the job, its answer was lost): the query
    would fail as 'Already Exists'. That job is the query's own, and is read."""
    before = len(fake.fake.requests)
    fake.fake.lose_insert_answer = True
    try:
        response = analyst.post("/api/query", json={"sql": AGGREGATE.format("page_views")})
    finally:
        fake.fake.lose_insert_answer = False
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == [["/", 1000], ["/docs", 1000], ["/pricing", 1000]]
    jobs = fake.fake.query_jobs(before)
    assert len(jobs) == 2 and jobs[0]["jobId"] == jobs[1]["jobId"]  # retried, one job


def test_a_lost_insert_answer_in_a_single_region_finds_its_job_there(
    analyst: httpx.Client, fake: FakeBigQueryServer
) -> None:
    """The same in a single region, with no ``location`` option: the job made is found
    only when told where it is, and the 409's lookup did not say, so the query failed
    'Not found: Job'. It is looked for where the datasets it reads are."""
    before = len(fake.fake.requests)
    fake.fake.location = "asia-northeast1"
    fake.fake.lose_insert_answer = True
    try:
        response = analyst.post("/api/query", json={"sql": AGGREGATE.format("page_views")})
    finally:
        fake.fake.location = "US"
        fake.fake.lose_insert_answer = False
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == [["/", 1000], ["/docs", 1000], ["/pricing", 1000]]
    jobs = fake.fake.query_jobs(before)
    assert len(jobs) == 2 and jobs[0]["jobId"] == jobs[1]["jobId"]  # retried, one job
    asked = [r for r in fake.fake.requests[before:] if r["api"] == "datasets.get"]
    assert asked == [{"api": "datasets.get", "dataset": "analytics"}]


def test_a_busy_bigquery_is_refused_within_the_query_timeout_and_says_so(
    fake: FakeBigQueryServer,
) -> None:
    """The client library retries 5xx and BigQuery's retryable reasons for 10 minutes
    (40 for a job) unless told otherwise: a remote query held its caller that long past
    the query timeout. Its retries end with the timeout; the refusal says to try again."""
    import sqlglot

    from agnes_mcp.rails.refusals import QueryFailed, RemoteEstimateFailed
    from agnes_mcp.rails.sandbox import Limits
    from connectors.bigquery.client import BigQueryOptions
    from connectors.bigquery.engine import BigQueryEngine

    engine = BigQueryEngine(
        BigQueryOptions.model_validate({**options(fake), "http_timeout_seconds": 0.3})
    )
    tree = sqlglot.parse_one(f"SELECT page FROM `{PROJECT}.analytics.page_views`", "bigquery")
    limits = Limits(rows=10, bytes=10**6, timeout_seconds=0.3)
    fake.fake.fail("jobs.query", 503, "backendError", times=10**6)
    fake.fake.fail("jobs.insert", 403, "rateLimitExceeded", times=10**6)
    started = time.monotonic()
    try:
        with pytest.raises(QueryFailed, match="busy or unavailable") as failed:
            engine.execute(tree, [], limits=limits, max_bytes=10**9, labels={})
        with pytest.raises(RemoteEstimateFailed, match="rateLimitExceeded") as priced:
            engine.estimate(tree, [])
    finally:
        fake.fake.failures.clear()
        engine.close()
    assert time.monotonic() - started < BOUNDED_BY_THE_TIMEOUTS
    for refusal in (failed.value, priced.value):
        assert "again" in (refusal.hint or "") and "127.0.0.1" not in refusal.message


def test_refused_credentials_are_a_typed_refusal_that_echoes_nothing(
    fake: FakeBigQueryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlglot
    from google.auth.exceptions import RefreshError

    from agnes_mcp.rails.refusals import QueryFailed
    from agnes_mcp.rails.sandbox import Limits
    from connectors.bigquery.client import BigQueryOptions
    from connectors.bigquery.engine import BigQueryEngine

    engine = BigQueryEngine(
        BigQueryOptions.model_validate({**options(fake), "credentials_env": "BQ_KEY"})
    )
    said = "invalid_grant: Invalid JWT Signature. private_key_id=0123abcd"

    def refused(*args: object, **kwargs: object) -> None:
        raise RefreshError(said, {"error": "invalid_grant"})

    monkeypatch.setattr(engine._client, "query", refused)
    tree = sqlglot.parse_one(f"SELECT page FROM `{PROJECT}.analytics.page_views`", "bigquery")
    with pytest.raises(QueryFailed, match=r"\$BQ_KEY") as failed:
        engine.execute(
            tree, [], limits=Limits(rows=1, bytes=10**6, timeout_seconds=5), max_bytes=1, labels={}
        )
    engine.close()
    assert "0123abcd" not in str(failed.value.to_dict()) and "revoked" in (failed.value.hint or "")


def test_the_cap_refusal_in_the_jobs_status_is_still_the_caps(
    fake: FakeBigQueryServer,
    connector: BigQueryConnector,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """BigQuery may accept a job and fail it later, the error in ``status.errorResult``;
    the client library makes a 500 of a reason it does not know. It is the cap's refusal
    all the same: remote_scan_too_large for a query, a terminal failure for a sync."""
    import sqlglot

    from agnes_mcp.rails.refusals import RemoteScanTooLarge
    from agnes_mcp.rails.sandbox import Limits
    from connectors.bigquery.client import BigQueryOptions
    from connectors.bigquery.engine import BigQueryEngine

    engine = BigQueryEngine(BigQueryOptions.model_validate(options(fake)))
    tree = sqlglot.parse_one(f"SELECT page FROM `{PROJECT}.analytics.page_views`", "bigquery")
    fake.fake.cap_in_status = True
    try:
        with pytest.raises(RemoteScanTooLarge, match="cap") as refused:
            engine.execute(
                tree,
                [],
                limits=Limits(rows=10, bytes=10**6, timeout_seconds=30),
                max_bytes=100,
                labels={},
            )
        assert refused.value.details["bytes_billed"] == 0  # BigQuery bills no refused job
        request = TableRequest(
            id="by_page",
            query_mode="materialized",
            source_query=f"SELECT page FROM `{PROJECT}.analytics.page_views`",
        )
        monkeypatch.setattr(bigquery_connector, "MATERIALIZE_MAX_BYTES", 100)
        with pytest.raises(TerminalSyncError, match="would bill more than") as failed:
            connector.extract(request, ExtractWriter(tmp_path / "extracts", "bq"))
        assert "http" not in failed.value.message
    finally:
        fake.fake.cap_in_status = False
        engine.close()


def test_table_names_as_bigquery_allows_them() -> None:
    from connectors.bigquery.connector import _table_name

    for name in ("page_views", "page-views", "table 01", "ग्राहक", "00_お客様", "étudiant-01"):
        assert _table_name(name), name
    for name in ("", "a.b", "a`b", "a;b", " lead", "x" * 1025, "tab\there", "new\nline"):
        assert not _table_name(name), name


@pytest.mark.parametrize(
    ("name", "suggested"),
    [
        ("page-views", "page_views"),
        ("étudiant-01", "etudiant_01"),
        ("00_お客様", "t_00"),
        ("duckdb_jobs", "t_duckdb_jobs"),  # a name queries are refused (an internal object)
        ("SQLite_Master", "t_sqlite_master"),
    ],
)
def test_suggested_ids_are_valid_table_ids(name: str, suggested: str) -> None:
    from agnes_sync.table_spec import TABLE_ID, TableSpec, suggested_table_id

    assert suggested_table_id(name) == suggested and TABLE_ID.match(suggested)
    TableSpec(id=suggested, source_type="files")


@pytest.mark.parametrize("table_id", ["duckdb_jobs", "pragma_x", "sqlite_stat"])
def test_a_table_cannot_take_a_name_queries_are_refused(table_id: str) -> None:
    from pydantic import ValidationError

    from agnes_sync.table_spec import TableSpec

    with pytest.raises(ValidationError, match="kept for DuckDB's own objects"):
        TableSpec(id=table_id, source_type="files")


def test_nested_and_repeated_fields_are_described_whole() -> None:
    from google.cloud.bigquery import SchemaField

    from connectors.bigquery.api_answers import column_type

    tags = SchemaField("tags", "STRING", mode="REPEATED")
    attrs = SchemaField(
        "attrs",
        "RECORD",
        mode="REPEATED",
        fields=(SchemaField("k", "STRING"), SchemaField("v", "INT64", mode="REPEATED")),
    )
    assert column_type(tags) == "ARRAY<STRING>"
    assert column_type(attrs) == "ARRAY<STRUCT<k STRING, v ARRAY<INT64>>>"
    assert column_type(SchemaField("n", "NUMERIC")) == "NUMERIC"


# --- snapshots ----------------------------------------------------------------------------------


def test_snapshot_with_a_bigquery_predicate(analyst: httpx.Client) -> None:
    spec = {
        "table_id": "page_views",
        "select": ["view_id", "event_date", "page"],
        "where": "event_date >= DATE_SUB(DATE '2026-10-27', INTERVAL 30 DAY) "
        "AND REGEXP_CONTAINS(page, r'^/p') AND CAST(visitor_id AS INT64) < 400",
        "order_by": ["view_id DESC"],
        "limit": 40,
    }
    estimate = analyst.post("/api/snapshots/estimate", json=spec).json()
    assert estimate["estimated_scan_bytes"] > 0 and "REGEXP_CONTAINS" in estimate["sql"]
    response = analyst.post("/api/snapshots", json=spec)
    assert response.status_code == 200, response.text
    table = pa.ipc.open_stream(response.content).read_all()
    assert 0 < table.num_rows <= 40
    assert set(table.column("page").to_pylist()) == {"/pricing"}
    ids = table.column("view_id").to_pylist()
    assert ids == sorted(ids, reverse=True)


def test_a_snapshot_too_large_says_what_was_charged(
    analyst: httpx.Client, admin: httpx.Client
) -> None:
    """Nothing is kept, and the scan is charged: what BigQuery billed, not what it read."""
    admin.put("/api/admin/server-config", json={"scan_caps": {"max_snapshot_rows": 5}})
    spec = {"table_id": "page_views", "select": ["page"]}
    error = assert_error(analyst.post("/api/snapshots", json=spec), 400, "snapshot_too_large")
    assert error["details"]["bytes_billed"] == MIN_BILLED_PER_TABLE
    assert f"({MIN_BILLED_PER_TABLE:,} bytes billed) was charged" in error["message"]


@pytest.mark.parametrize(
    ("where", "advice"),
    [
        ("event_date >= current_date - 7", "CURRENT_DATE()"),
        ("event_date::DATE > DATE '2026-01-01'", "CAST(x AS DATE)"),
        ("page ILIKE '%pricing%'", "LOWER(column) LIKE"),
        ("event_date > now() - INTERVAL '30 days'", "CURRENT_TIMESTAMP()"),
        ("date_trunc('month', event_date) = DATE '2026-02-01'", "DATE_TRUNC(x, MONTH)"),
    ],
)
def test_duckdb_isms_get_their_bigquery_spelling(
    analyst: httpx.Client, where: str, advice: str
) -> None:
    spec = {"table_id": "page_views", "select": ["page"], "where": where}
    error = assert_error(analyst.post("/api/snapshots", json=spec), 400, "snapshot_invalid")
    assert "BigQuery table" in error["message"] and advice in error["message"]


def test_a_string_that_looks_like_duckdb_is_fine(analyst: httpx.Client) -> None:
    spec = {"table_id": "page_views", "select": ["page"], "where": "page != 'a::b ilike now()'"}
    response = analyst.post("/api/snapshots", json={**spec, "limit": 3})
    assert response.status_code == 200, response.text


def test_credentials_come_from_a_named_variable_and_are_never_echoed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectors.bigquery.client import BigQueryOptions, make_client

    settings = BigQueryOptions(project=PROJECT, credentials_env="AGNES_TEST_BQ_KEY")
    with pytest.raises(InvalidTableSpec, match=r"AGNES_TEST_BQ_KEY.*not set"):
        make_client(settings)
    secret = '{"type": "service_account", "private_key": "sekrit-value"}'
    monkeypatch.setenv("AGNES_TEST_BQ_KEY", secret)
    with pytest.raises(InvalidTableSpec) as raised:
        make_client(settings)
    assert "sekrit" not in str(raised.value) and "usable service-account key" in str(raised.value)
    monkeypatch.setenv("AGNES_TEST_BQ_KEY", str(tmp_path / "missing.json"))
    with pytest.raises(InvalidTableSpec, match="usable"):
        make_client(settings)


# --- metrics and previews on BigQuery -----------------------------------------------------------


def test_a_metric_on_a_bigquery_table_compiles_to_bigquery_sql(
    deployment: Deployment, analyst: httpx.Client, fake: FakeBigQueryServer
) -> None:
    from agnes_mcp.metrics.definition import MetricDefinition

    services = deployment.live.services
    metric = MetricDefinition.model_validate(
        {
            "name": "visitors",
            "display_name": "Visitors",
            "category": "web",
            "description": "Distinct visitors.",
            "type": "count_distinct",
            "grain": "month",
            "table": "page_views",
            "expression": "count(DISTINCT visitor_id) FILTER (WHERE page <> '/docs')",
            "time_column": "event_date",
            "dimensions": [{"name": "page"}],
        }
    )
    services.metrics.put_many([metric], updated_by=None, replace=False)
    group = services.groups.by_name("bq-analysts")
    assert group is not None
    services.grants.add(group.id, ResourceType.METRIC, metric.id, granted_by="test")
    before = len(fake.fake.requests)
    body = {
        "grain": "month",
        "filters": {"page": ["/", "/pricing"]},
        "time_range": {"start": "2026-02-01", "end": "2026-04-01"},
    }
    response = analyst.post("/api/metrics/web/visitors/query", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["dialect"] == "bigquery" and answer["provenance"]["engine"] == "bigquery"
    assert "DATE_TRUNC(event_date, MONTH)" in answer["sql"]
    assert "COUNT(DISTINCT IF(page <> '/docs', visitor_id, NULL))" in answer["sql"]
    assert [r[0] for r in answer["rows"]] == ["2026-02-01", "2026-03-01"]
    assert all(r[1] > 0 for r in answer["rows"]) and answer["bytes_scanned"] > 0
    jobs = fake.fake.query_jobs(before)
    assert jobs and "`example-project`.analytics.page_views" in jobs[-1]["query"]
    assert jobs[-1]["maximumBytesBilled"]


def test_describe_uses_the_free_preview(analyst: httpx.Client, fake: FakeBigQueryServer) -> None:
    before = len(fake.fake.requests)
    response = analyst.get(
        "/api/catalog/page_views/describe",
        params={"n": 3},
        headers={"Accept": "application/vnd.apache.arrow.stream"},
    )
    assert response.status_code == 200, response.text
    table = pa.ipc.open_stream(response.content).read_all()
    assert table.num_rows == 3 and "visitor_id" in table.column_names
    calls = [r["api"] for r in fake.fake.requests[before:]]
    assert "tabledata.list" in calls and "jobs.query" not in calls and "jobs.insert" not in calls
    schema = analyst.get("/api/catalog/page_views/schema").json()
    assert [c["type"] for c in schema["columns"]][:3] == ["INTEGER", "DATE", "STRING"]


@pytest.mark.parametrize("kind", ["empty", "html"])
def test_an_answer_the_client_cannot_read_is_a_typed_failure_worth_retrying(
    fake: FakeBigQueryServer, tmp_path: Path, kind: str
) -> None:
    """A 200 that is not the API's resource (JSON without its fields, a proxy's HTML page)
    made the client library raise its own KeyError or ValueError, passed on as it was:
    an untyped failure. Each path says BigQuery's answer could not be read, retryable."""
    import sqlglot

    from agnes_mcp.rails.refusals import QueryFailed, RemoteEstimateFailed
    from agnes_mcp.rails.sandbox import Limits
    from connectors.bigquery.client import BigQueryOptions
    from connectors.bigquery.engine import BigQueryEngine

    settings = {**options(fake), "http_timeout_seconds": 0.3, "job_timeout_seconds": 0.3}
    connector = BigQueryConnector(SourceContext("bq", settings, tmp_path))
    writer = ExtractWriter(tmp_path / "extracts", "bq")
    engine = BigQueryEngine(BigQueryOptions.model_validate(settings))
    tree = sqlglot.parse_one(f"SELECT page FROM `{PROJECT}.analytics.page_views`", "bigquery")
    for api in ("tables.get", "jobs.query", "jobs.insert", "tables.list", "datasets"):
        fake.fake.fail(api, 200, kind, times=10**6)
    try:
        failures: list[Any] = []
        for request in (
            TableRequest(
                id="pv", bucket="analytics", source_table="page_views", query_mode="remote"
            ),
            TableRequest(id="m", query_mode="materialized", source_query="SELECT 1 AS one"),
        ):
            with pytest.raises(TransientSyncError) as synced:
                connector.extract(request, writer)
            failures.append(synced.value)
        with pytest.raises(QueryFailed) as queried:
            engine.execute(
                tree,
                [],
                limits=Limits(rows=10, bytes=10**6, timeout_seconds=5),
                max_bytes=10**9,
                labels={},
            )
        with pytest.raises(RemoteEstimateFailed) as priced:
            engine.estimate(tree, [])
        failures += [queried.value, priced.value]
    finally:
        fake.fake.failures.clear()
        engine.close()
    for failure in failures:
        assert "could not be read" in failure.message, failure.message
        assert "KeyError" not in failure.message and "Traceback" not in failure.message
        assert "again" in (failure.hint or "") or failure.transient
