"""The query path: real queries against raw DuckDB, the SQL rails' cost, the server's
overhead on a tiny query, and how close the warehouse engine's scan estimate comes to the
bytes DuckDB really reads.

- real queries (issue 19, goals 1 and 3a): the demo's count and GROUP BY on orders over
  HTTP (MCP, raw JSON-RPC) and in process, against DuckDB's read_parquet on the same
  files in the same run (:mod:`benchmarks.query_latency`).

- rails: sqlglot policy + DuckDB's own parse cross-check on a 20-line query, against
  sqlglot parsing the same text alone (the floor for any sqlglot-based check).
- overhead: ``POST /api/query`` on the demo server (auth, rails, sandbox, JSON) against
  raw DuckDB running the same query on the same parquet files in this process; and a
  large answer (5,000 rows as JSON) against DuckDB's rows dumped by ``json.dumps``.
- estimate: the DuckDB warehouse engine's estimate for 10 queries on the demo's
  ``web_sessions`` against ``rchar`` (bytes returned by read calls) of a fresh process
  running each query.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import httpx
import sqlglot

from agnes_mcp.auth.principal import Principal
from agnes_mcp.demo import first_sync, prepare, with_demo_sources
from agnes_mcp.rails import policy
from agnes_mcp.rails.checked_parse import clear_cache
from agnes_mcp.rails.planner import plan_local
from agnes_mcp.rails.tables import CatalogTable, RemoteLocation
from agnes_mcp.services import Services
from agnes_mcp.settings import load_settings
from agnes_sync.demo.generator import ensure
from benchmarks import query_latency
from benchmarks.harness import Result, agnes_server, median, time_calls
from benchmarks.read_bytes import bytes_read
from connectors.duckdb_warehouse.engine import DuckDBWarehouseEngine

QUERY_20_LINES = """
WITH recent AS (
    SELECT o.order_id, o.customer_id, o.order_date, o.total_amount, o.status
    FROM orders AS o
    WHERE o.order_date >= DATE '2026-01-01'
      AND o.status IN ('completed', 'refunded')
),
per_customer AS (
    SELECT customer_id, count(*) AS orders, sum(total_amount) AS revenue,
           max(order_date) AS last_order
    FROM recent
    GROUP BY customer_id
)
SELECT c.segment, c.country,
       count(*) AS customers,
       round(avg(p.revenue), 2) AS avg_revenue,
       quantile_cont(p.orders, 0.9) AS p90_orders
FROM per_customer AS p
JOIN customers AS c ON c.customer_id = p.customer_id
WHERE c.signup_date < DATE '2026-06-01'
GROUP BY ALL
ORDER BY avg_revenue DESC
LIMIT 50
"""

TINY = "SELECT count(*) AS n FROM products WHERE product_id > {i}"


DEMO_QUERIES = [
    "SELECT count(*) FROM web_sessions",
    "SELECT device, count(*) FROM web_sessions GROUP BY 1",
    "SELECT sum(pageviews) FROM web_sessions WHERE event_date = DATE '2025-03-01'",
    "SELECT country_code, avg(duration_seconds) FROM web_sessions "
    "WHERE event_date BETWEEN DATE '2025-01-01' AND DATE '2025-01-31' GROUP BY 1",
    "SELECT * FROM web_sessions WHERE event_date >= DATE '2026-10-01'",
    "SELECT landing_page, count(*) FILTER (WHERE converted) FROM web_sessions GROUP BY 1",
    "SELECT traffic_source, count(DISTINCT customer_id) FROM web_sessions "
    "WHERE event_date > DATE '2026-06-30' GROUP BY 1",
    "SELECT session_id FROM web_sessions WHERE duration_seconds > 1700",
    "SELECT * FROM web_sessions",
    "SELECT event_date, count(*) FROM web_sessions WHERE event_date < DATE '2024-02-01' GROUP BY 1",
]


@contextmanager
def _demo_services(root: Path) -> Iterator[tuple[Services, Principal]]:
    """The demo company at a small scale, synced, in this process; the analyst's principal."""
    data, _ = ensure(root / "demo", scale=0.002)
    settings = with_demo_sources(load_settings(data_dir=root / "data"), data)
    services = Services.open(settings)
    try:
        tokens = prepare(services)
        first_sync(services)
        yield services, services.tokens.authenticate(tokens.analyst)
    finally:
        services.close()


def _rails(n: int) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp, _demo_services(Path(tmp)) as (services, who):
        access, catalog = services.access, services.query.catalog

        def rails() -> None:  # parse + resolve + check, as the issue defines the rails
            parsed = policy.parse(QUERY_20_LINES, policy.DUCKDB)
            plan_local(parsed, catalog.current(), access.tables_for(who))

        checked = time_calls(rails, n)

        def plan() -> None:  # the accepted-parse cache would hide the checks: empty it
            clear_cache()
            services.query.plan(who, QUERY_20_LINES, "auto")

        full = time_calls(plan, n)
        parsed_only = time_calls(lambda: sqlglot.parse_one(QUERY_20_LINES, dialect="duckdb"), n)
    floor = median(parsed_only) * 1000
    return [
        Result(
            "SQL rails on a 20-line query (p50: parse + resolve + check)",
            median(checked) * 1000,
            "ms",
            "sqlglot.parse_one of the same text (p50)",
            floor,
            "<= 1 ms",
        ),
        Result(
            "... plus DuckDB's own parse cross-check (p50: the whole plan step)",
            median(full) * 1000,
            "ms",
            "sqlglot.parse_one of the same text (p50)",
            floor,
            "report",
            note="json_serialize_sql costs ~0.6 ms of it on this query",
        ),
    ]


LARGE_ROWS = 5_000
LARGE = f"SELECT * FROM orders ORDER BY order_id LIMIT {LARGE_ROWS}"


def _overhead(n: int) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        with agnes_server(data_dir, "demo", "--scale", "0.01") as server:
            headers = {"Authorization": f"Bearer {server.admin_token}"}
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
                answer = client.post("/api/query", json={"sql": TINY.format(i=0)}).json()
                assert "rows" in answer, answer
                texts = (TINY.format(i=-i) for i in itertools.count())  # new SQL every call
                served = time_calls(lambda: client.post("/api/query", json={"sql": next(texts)}), n)
                large = {"sql": LARGE, "limit": LARGE_ROWS}
                answer = client.post("/api/query", json=large).json()
                said = answer.get("truncation") or answer.get("error")
                assert answer.get("row_count") == LARGE_ROWS and not said, said
                columns = len(answer["columns"])
                served_large = time_calls(lambda: client.post("/api/query", json=large), n // 10)
            con = duckdb.connect()
            for table in ("products", "orders"):
                files = sorted(str(p) for p in data_dir.rglob(f"{table}*.parquet"))
                files += sorted(str(p) for p in data_dir.rglob(f"{table}/**/*.parquet"))
                listed = ", ".join(f"'{f}'" for f in files)
                con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{listed}])")
            raw = time_calls(lambda: con.execute(TINY.format(i=0)).fetchall(), n)

            def bare_json() -> bytes:  # what a bare JSON API over DuckDB does
                rows = con.execute(LARGE).fetchall()
                return json.dumps({"rows": rows}, default=str).encode()

            raw_large = time_calls(bare_json, n // 10)
            con.close()
    overhead = (median(served) - median(raw)) * 1000
    return [
        Result(
            "POST /api/query, tiny query on the demo server, new SQL each call (p50)",
            median(served) * 1000,
            "ms",
            "raw DuckDB, same query and parquet, in process (p50)",
            median(raw) * 1000,
            "overhead <= 6.4 ms (10x under 64 ms)",
            note=f"server overhead {overhead:.2f} ms",
        ),
        Result(
            f"POST /api/query, {LARGE_ROWS:,} rows x {columns} columns as JSON, over HTTP (p50)",
            median(served_large) * 1000,
            "ms",
            "raw DuckDB in process: fetchall + json.dumps of the same rows (p50)",
            median(raw_large) * 1000,
            "report (what a large answer costs over a bare JSON API)",
        ),
    ]


def _estimates(scale: float) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        data, _ = ensure(Path(tmp) / "demo", scale=scale)
        path = data.warehouse_path
        sessions = data.manifest["sizes"]["sessions"]
        location = RemoteLocation("wh", "warehouse", "duckdb", str(path), None, "web_sessions")
        table = CatalogTable(
            id="web_sessions",
            description="",
            query_mode="remote",
            source="wh",
            rows=None,
            size_bytes=None,
            extracted_at=None,
            remote=location,
        )
        engine = DuckDBWarehouseEngine(location, memory_limit="1GB", threads=2)
        estimated, actual, ratios = 0, 0, []
        try:
            for sql in DEMO_QUERIES:
                tree = sqlglot.parse_one(sql, dialect="duckdb")
                guess = engine.estimate(tree, [table]).scan_bytes
                measured = bytes_read(path, sql)
                estimated += guess
                actual += measured
                if measured or guess:  # count(*) reads no column: 0 of 0 is exact
                    ratios.append(guess / measured if measured else float("inf"))
        finally:
            engine.close()
    mb = 1024 * 1024
    return Result(
        f"warehouse scan estimate, {len(DEMO_QUERIES)} demo queries on {sessions:,} sessions (sum)",
        estimated / mb,
        "MB",
        "bytes DuckDB really read (rchar of a fresh process, sum)",
        actual / mb,
        "0.5x-2x per query",
        note=f"per query {min(ratios):.2f}x-{max(ratios):.2f}x",
    )


def run(quick: bool = False) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        real = query_latency.run(0.1 if quick else 1.0, 60 if quick else 300, Path(tmp))
    return [
        *real,
        *_rails(200 if quick else 1000),
        *_overhead(100 if quick else 500),
        _estimates(0.02 if quick else 0.1),
    ]
