"""The remote scan cap holds whatever the estimate says.

- The estimate is conservative: for every query of the scan-cap family (whole-row and
  positional references, COLUMNS, NATURAL/USING joins, NaN and undecidable predicates,
  predicates of another scope) it is at least what the engine measures it read.
- The engine enforces the cap itself: with an estimate wrong on purpose, the query is
  stopped (or refused) past the cap, and the bytes it read are charged and audited.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pytest

from agnes_mcp.rails.checked_parse import parse_checked
from agnes_mcp.rails.engine import Estimate
from agnes_mcp.rails.planner import rewrite_remote_names
from agnes_mcp.rails.policy import DUCKDB
from agnes_mcp.rails.refusals import QueryRefused, RemoteScanTooLarge
from agnes_mcp.rails.sandbox import Limits
from agnes_mcp.rails.tables import RemoteLocation, VersionedCatalog
from connectors.duckdb_warehouse import read_meter
from connectors.duckdb_warehouse.engine import DuckDBWarehouseEngine
from tests.conftest import DemoServer, remote_table
from tests.rails_corpus import SCAN_CAP_CASES

SLACK = 64 * 1024  # metadata pages a query reads besides its columns' blocks
LIMITS = Limits(rows=100, bytes=64 * 1024**2, timeout_seconds=60)

pytestmark = pytest.mark.skipif(
    not read_meter.available(), reason="per-thread I/O counters (Linux /proc) are required"
)


@pytest.fixture(scope="module")
def warehouse(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[DuckDBWarehouseEngine, VersionedCatalog]]:
    path = tmp_path_factory.mktemp("warehouse") / "wh.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE web_sessions AS SELECT i AS session_id, "
        "DATE '2025-01-01' + CAST(i // 2000 AS INTEGER) AS event_date, "
        "['web', 'ios', 'android'][i % 3 + 1] AS device, i * 3.5 AS amount, "
        "'page-' || (i % 997) AS landing_page "
        "FROM range(600000) t(i) ORDER BY event_date"
    )
    con.close()
    location = RemoteLocation("wh", "warehouse", "duckdb", str(path), None, '"main"."web_sessions"')
    table = remote_table("web_sessions", location, rows=600000, partition_by="event_date")
    catalog = VersionedCatalog(version=(0, 0))
    catalog.add(table)
    engine = DuckDBWarehouseEngine(location, memory_limit="1GB", threads=2)
    yield engine, catalog
    engine.close()


@pytest.mark.parametrize(
    "sql", SCAN_CAP_CASES, ids=[f"{i:02d}" for i in range(len(SCAN_CAP_CASES))]
)
def test_the_estimate_is_never_below_what_is_read(
    warehouse: tuple[DuckDBWarehouseEngine, VersionedCatalog], sql: str
) -> None:
    engine, catalog = warehouse
    try:
        parsed = parse_checked(sql, DUCKDB)
    except QueryRefused:
        return  # refused before any read: nothing to under-estimate
    tree = rewrite_remote_names(parsed, catalog)
    tables = list(catalog.tables.values())
    estimated = engine.estimate(tree, tables).scan_bytes
    measured = engine.execute(
        tree, tables, limits=LIMITS, max_bytes=10**12, labels={}
    ).bytes_scanned
    assert measured > 0
    assert estimated + SLACK >= measured, f"estimated {estimated:,}, read {measured:,}"


def test_the_scan_cap_family_is_large_enough() -> None:
    assert len(SCAN_CAP_CASES) >= 20


@contextmanager
def wrong_estimates(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every DuckDB warehouse estimate says one byte: only the engine's own metering can
    hold the cap now."""
    with monkeypatch.context() as patch:
        patch.setattr(
            DuckDBWarehouseEngine, "estimate", lambda self, tree, tables: Estimate(scan_bytes=1)
        )
        yield


def test_the_engine_stops_a_query_the_estimate_got_wrong(
    demo_server: DemoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = demo_server.live.services
    analyst = services.tokens.authenticate(demo_server.analyst_token)
    cap = 64 * 1024
    services.server_config.set("scan_caps.per_query_bytes", cap, updated_by="test")
    spent_before = services.query.budget.spent(analyst)
    sql = "SELECT count(DISTINCT w) AS n FROM web_sessions w /* scan cap test */"
    try:
        with wrong_estimates(monkeypatch), pytest.raises(RemoteScanTooLarge) as caught:
            services.query.run(analyst, sql, mode="remote")
    finally:
        services.server_config.delete("scan_caps.per_query_bytes")
    read = caught.value.details["bytes_scanned"]
    assert read > cap  # it read past the cap before it was stopped (or refused at the end)
    assert caught.value.details["scan_bytes"] == 1  # the estimate it was given
    assert services.query.budget.spent(analyst) == spent_before + read  # charged as measured
    services.write_behind.flush()
    audited = [
        r for r in services.audit_log.recent(limit=50) if "scan cap test" in r.params.get("sql", "")
    ]
    assert audited and audited[0].result == "remote_scan_too_large"
    assert audited[0].params["bytes_scanned"] == read


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        # reads three columns of every row, then fails
        (
            "SELECT max(device), sum(duration_seconds), error('boom ' || max(landing_page)) "
            "FROM web_sessions",
            "query_failed",
        ),
        ("SELECT sum(CAST(landing_page || device AS INTEGER)) FROM web_sessions", "query_failed"),
    ],
)
def test_a_remote_query_that_fails_after_reading_is_charged_what_it_read(
    demo_server: DemoServer, sql: str, code: str
) -> None:
    services = demo_server.live.services
    analyst = services.tokens.authenticate(demo_server.analyst_token)
    spent_before = services.query.budget.spent(analyst)
    with pytest.raises(QueryRefused) as caught:
        services.query.run(analyst, f"{sql} /* failed charge test */", mode="remote")
    assert caught.value.code == code
    read = caught.value.details["bytes_scanned"]
    assert read > 0  # it read before it failed, and says so
    assert services.query.budget.spent(analyst) == spent_before + read  # and is charged it
    services.write_behind.flush()
    audited = [
        r
        for r in services.audit_log.recent(limit=50)
        if "failed charge test" in r.params.get("sql", "")
    ]
    assert audited[0].result == code and audited[0].params["bytes_scanned"] == read
