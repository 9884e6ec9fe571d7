"""The walls of a local query hold on the way to a remote table too.

- A query on the DuckDB warehouse runs with the value guards (``value_too_large``) and
  refuses calls that would skip them, as the sandbox does: ``lock_down`` installs them
  on every locked connection.
- Pricing a query evaluates the literals of its predicates through the same rails:
  guarded, memory-limited and timed; a literal that is refused or takes too long prunes
  nothing, so the estimate stays whole rather than the server working on it for minutes.
- An estimate takes a place among the caller's running queries, as a query does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from agnes_mcp.query.concurrency import TooManyQueries
from agnes_mcp.query.snapshots import Snapshots
from agnes_mcp.rails.checked_parse import parse_checked
from agnes_mcp.rails.planner import rewrite_remote_names
from agnes_mcp.rails.refusals import FunctionNotAllowed, SnapshotInvalid
from agnes_mcp.rails.sandbox import Limits
from agnes_mcp.rails.snapshot_spec import SnapshotSpec
from agnes_mcp.rails.tables import CatalogTable, RemoteLocation, VersionedCatalog
from agnes_mcp.rails.value_guards import ValueTooLarge
from connectors.duckdb_warehouse import engine as warehouse_engine
from connectors.duckdb_warehouse.engine import DuckDBWarehouseEngine, LiteralEvaluator
from tests.conftest import DemoServer, remote_table
from tests.test_sandbox_memory import GiB, peak_growth

LIMITS = Limits(rows=100, bytes=64 * 1024**2, timeout_seconds=60)
# A column-free expression whose work grows with the cube of its number (minutes at 5000).
SLOW = (
    "list_sum(list_transform(range(5000), lambda x: "
    "list_sum(list_transform(range(x), lambda y: list_sum(range(y))))))"
)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBWarehouseEngine]:
    path = tmp_path_factory.mktemp("remote-walls") / "wh.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE events AS SELECT i AS id, hash(i) AS h, "
        "DATE '2025-01-01' + CAST(i // 5000 AS INTEGER) AS day FROM range(600000) t(i) ORDER BY day"
    )
    con.close()
    warehouse = DuckDBWarehouseEngine(
        RemoteLocation("wh", "warehouse", "duckdb", str(path), None, '"main"."events"'),
        memory_limit="1GB",
        threads=2,
    )
    yield warehouse
    warehouse.close()


def _parse(sql: str) -> exp.Expression:
    tree = sqlglot.parse_one(sql, read="duckdb")
    assert isinstance(tree, exp.Expression)
    return tree


def _table(engine: DuckDBWarehouseEngine) -> CatalogTable:
    return remote_table("events", engine.location, rows=600000, partition_by="day")


def _run(engine: DuckDBWarehouseEngine, sql: str) -> object:
    tree = _parse(sql)
    return engine.execute(tree, [_table(engine)], limits=LIMITS, max_bytes=10**12, labels={})


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT length(repeat('x', 100000000)) AS n FROM events LIMIT 1",
        "SELECT max(length(repeat('x', 3000000 + (id % 2)::INT))) AS n FROM events",
        "SELECT len(range(id, id + 100000000)) AS n FROM events LIMIT 1",
    ],
)
def test_a_remote_query_is_refused_values_too_large(
    engine: DuckDBWarehouseEngine, sql: str
) -> None:
    growth, outcome = peak_growth(lambda: _run(engine, sql))
    assert isinstance(outcome, ValueTooLarge), outcome
    assert growth < GiB, f"grew {growth / 2**20:.0f} MiB"


def test_a_remote_query_may_not_call_the_unguarded_builtins(
    engine: DuckDBWarehouseEngine,
) -> None:
    with pytest.raises(FunctionNotAllowed):
        _run(engine, "SELECT length(system.main.repeat('x', 100000000)) AS n FROM events")


def test_a_remote_query_still_runs_and_reads_the_warehouse(engine: DuckDBWarehouseEngine) -> None:
    result = _run(engine, "SELECT count(*) AS n, max(length(repeat('ab', 3))) AS r FROM events")
    assert result.table.to_pylist() == [{"n": 600000, "r": 6}]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT what FROM sessions",
        # a CTE of the same name elsewhere in the query (a sibling scope, a later CTE)
        "SELECT what FROM sessions, (WITH sessions AS (SELECT 1 AS y) SELECT y FROM sessions)",
        "WITH a AS (SELECT what FROM sessions), sessions AS (SELECT 1) SELECT what FROM a",
        "WITH RECURSIVE sessions AS (SELECT what FROM sessions) SELECT what FROM sessions",
        # a recursive CTE's first branch is bound before the CTE exists: the table
        "WITH RECURSIVE sessions AS (SELECT what FROM sessions UNION "
        "SELECT what FROM sessions WHERE false) SELECT what FROM sessions",
        "WITH RECURSIVE sessions AS ((SELECT what FROM sessions UNION ALL SELECT what FROM "
        "sessions) UNION SELECT what FROM sessions WHERE false) SELECT DISTINCT what FROM sessions",
        # only a UNION recurses: over an EXCEPT or INTERSECT every read of the name is the table
        "WITH RECURSIVE sessions AS (SELECT what FROM sessions INTERSECT SELECT what FROM "
        "sessions) SELECT what FROM sessions",
        "WITH RECURSIVE sessions AS (SELECT what FROM sessions EXCEPT SELECT 'x') "
        "SELECT what FROM sessions",
        # the id under the schema "main": the rails read the table of that id
        "SELECT what FROM main.sessions",
        'SELECT s.what FROM "main"."sessions" AS s',
    ],
)
def test_a_remote_query_reads_the_registered_table_whatever_its_ctes_are_named(
    tmp_path: Path, sql: str
) -> None:
    """The table ``sessions`` is the warehouse's ``web_sessions``; the warehouse also holds
    a table named ``sessions`` that nobody registered. Every read the rails checked as
    ``sessions`` reads ``web_sessions``: none is left to the warehouse to resolve."""
    path = tmp_path / "wh.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE web_sessions AS SELECT 'registered' AS what")
    con.execute("CREATE TABLE sessions AS SELECT 'not registered' AS what")
    con.close()
    location = RemoteLocation("wh", "warehouse", "duckdb", str(path), None, '"main"."web_sessions"')
    table = remote_table("sessions", location, rows=1, partition_by="what")
    catalog = VersionedCatalog(version=(0, 0))
    catalog.add(table)
    warehouse = DuckDBWarehouseEngine(location, memory_limit="1GB", threads=1)
    try:
        tree = rewrite_remote_names(parse_checked(sql, "duckdb"), catalog)
        result = warehouse.execute(tree, [table], limits=LIMITS, max_bytes=10**12, labels={})
    finally:
        warehouse.close()
    assert result.table.to_pylist() == [{"what": "registered"}]


@pytest.mark.parametrize(
    "sql",
    [
        # the source's alias and the table's name: the rails read wh.sales.events
        "SELECT what FROM wh.events",
        "SELECT e.what FROM WH.EVENTS AS e",
        "SELECT what FROM wh.sales.events",
        "SELECT what FROM sales.events",
    ],
)
def test_a_remote_query_reads_the_registered_table_whatever_path_names_it(
    tmp_path: Path, sql: str
) -> None:
    """The table ``events`` is the warehouse's ``sales.events``; the warehouse also holds
    ``main.events``, which nobody registered. ``wh.events`` (the alias and the name) is
    the registered table to the rails, and DuckDB reads it as ``wh.main.events``: a
    qualified name is sent as the path the rails checked, never left to the warehouse."""
    path = tmp_path / "wh.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA sales")
    con.execute("CREATE TABLE sales.events AS SELECT 'registered' AS what")
    con.execute("CREATE TABLE main.events AS SELECT 'not registered' AS what")
    con.close()
    location = RemoteLocation("wh", "wh", "duckdb", str(path), None, '"sales"."events"')
    table = remote_table("events", location, rows=1, partition_by="what")
    catalog = VersionedCatalog(version=(0, 0))
    catalog.add(table)
    warehouse = DuckDBWarehouseEngine(location, memory_limit="1GB", threads=1)
    try:
        parsed = parse_checked(sql, "duckdb")
        assert [
            catalog.by_remote_path(tuple(p for p in (r.catalog, r.db, r.name) if p))
            for r in parsed.refs
        ] == [table]
        tree = rewrite_remote_names(parsed, catalog)
        result = warehouse.execute(tree, [table], limits=LIMITS, max_bytes=10**12, labels={})
    finally:
        warehouse.close()
    assert result.table.to_pylist() == [{"what": "registered"}]


def test_a_slow_literal_prunes_nothing_and_is_stopped(
    engine: DuckDBWarehouseEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(warehouse_engine, "LITERAL_SECONDS", 0.2)
    evaluator = LiteralEvaluator("1GB")
    with pytest.raises(ValueError, match="query_timeout"):
        evaluator.value(_parse(SLOW), "duckdb")
    table = [_table(engine)]
    whole = engine.estimate(_parse("SELECT max(h) FROM events"), table).scan_bytes
    pruned = engine.estimate(
        _parse("SELECT max(h) FROM events WHERE day < DATE '2025-01-05'"),
        table,
    ).scan_bytes
    bomb = engine.estimate(
        _parse(f"SELECT max(h) FROM events WHERE day < DATE '2025-01-05' + {SLOW}"),
        table,
    ).scan_bytes
    assert pruned < whole  # a literal prunes
    assert bomb == whole  # the one it could not evaluate in time prunes nothing


def test_the_literals_of_one_estimate_share_one_time(
    engine: DuckDBWarehouseEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each slow literal had the whole time of one: a WHERE of many slow predicates made
    one estimate (and so the query it prices) run that many times past it, whatever the
    query timeout. Past the estimate's time the literals left prune nothing."""
    monkeypatch.setattr(warehouse_engine, "LITERAL_SECONDS", 0.2)
    slow = " AND ".join(
        f"day < DATE '2025-01-05' + CAST(({SLOW}) % 2 AS INTEGER) + {i}" for i in range(15)
    )
    table = [_table(engine)]
    whole = engine.estimate(_parse("SELECT max(h) FROM events"), table).scan_bytes
    started = time.monotonic()
    estimate = engine.estimate(_parse(f"SELECT max(h) FROM events WHERE {slow}"), table)
    took = time.monotonic() - started
    assert estimate.scan_bytes == whole
    assert took < 1.5, f"{took:.1f} s: 15 literals of 0.2 s each took their own time"
    # cheap literals still prune, however many a query holds
    many = " AND ".join(f"day < DATE '2025-01-05' + {i}" for i in range(50))
    pruned = engine.estimate(_parse(f"SELECT max(h) FROM events WHERE {many}"), table)
    assert pruned.scan_bytes < whole


def test_a_huge_literal_is_refused_before_it_is_built() -> None:
    evaluator = LiteralEvaluator("1GB")
    expression = _parse("length(repeat('x', 1500000000))")

    def attempt() -> object:
        try:
            return evaluator.value(expression, "duckdb")
        except ValueError as refused:
            return refused

    growth, outcome = peak_growth(attempt)
    assert isinstance(outcome, ValueError) and "value_too_large" in str(outcome), outcome
    assert growth < GiB, f"grew {growth / 2**20:.0f} MiB"
    qualified = _parse("length(system.main.repeat('x', 1500000000))")
    with pytest.raises(ValueError, match="function_not_allowed"):
        evaluator.value(qualified, "duckdb")


def test_literals_keep_their_values() -> None:
    evaluator = LiteralEvaluator("1GB")
    value = evaluator.value(_parse("DATE '2026-01-08' - INTERVAL 7 DAY"), "duckdb")
    assert str(value) == "2026-01-01 00:00:00"
    assert evaluator.value(_parse("40 + 2"), "duckdb") == 42
    with pytest.raises(ValueError, match="not a literal"):
        evaluator.value(_parse("id + 1"), "duckdb")


def test_a_snapshot_predicate_is_bound_behind_the_walls(demo_server: DemoServer) -> None:
    """A snapshot's ``where`` on a DuckDB warehouse is bound on no data first, to say what
    does not fit the columns; DuckDB folds calls on constants while it binds, and that
    DuckDB had no walls: two nested ``replace`` of 1,000-character literals built 200 MB
    (three, a terabyte) before anything was priced. It is bound on a locked, value-guarded
    connection now, and the snapshot itself is refused by the value guards."""
    services = demo_server.live.services
    analyst = services.tokens.authenticate(demo_server.analyst_token)
    k = "x" * 1000
    spec = SnapshotSpec(
        table_id="web_sessions",
        select=["session_id"],
        where=f"length(replace(replace('{k}', 'x', '{k}'), 'x', '{k[:200]}')) > 0",
    )
    snapshots = Snapshots(services.query)
    growth, _ = peak_growth(lambda: snapshots.estimate(analyst, spec))
    assert growth < 100 * 2**20, f"grew {growth / 2**20:.0f} MiB"
    with pytest.raises(ValueTooLarge):
        snapshots.create(analyst, spec)
    # what binds still binds, and what does not is still said before any scan
    fine = spec.model_copy(update={"where": "event_date >= DATE '2026-10-01'"})
    assert snapshots.estimate(analyst, fine).estimated_scan_bytes > 0
    with pytest.raises(SnapshotInvalid, match="cannot be applied"):
        snapshots.estimate(analyst, spec.model_copy(update={"where": "device > 5"}))


def test_an_estimate_takes_a_place_among_the_callers_queries(demo_server: DemoServer) -> None:
    services = demo_server.live.services
    analyst = services.tokens.authenticate(demo_server.analyst_token)
    caps = services.query.budget.caps()
    sql = "SELECT count(*) FROM web_sessions WHERE event_date >= DATE '2026-10-01'"
    assert services.query.estimate(analyst, sql).scan_bytes > 0
    with ExitStack() as held:
        for _ in range(caps.concurrent_queries_per_user):
            held.enter_context(
                services.query.slots.hold(
                    analyst.user_id,
                    per_user=caps.concurrent_queries_per_user,
                    total=caps.concurrent_queries,
                    timeout_seconds=60,
                )
            )
        with pytest.raises(TooManyQueries):
            services.query.estimate(analyst, sql)
    assert services.query.estimate(analyst, sql).scan_bytes > 0  # the places came back
