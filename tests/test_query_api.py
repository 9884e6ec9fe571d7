"""The query API over HTTP: results, Arrow, provenance, caps and budgets, snapshots, audit."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx
import pyarrow as pa
import pytest

from agnes_mcp.query.budget import CAP_KEYS, ScanBudget
from agnes_mcp.rails.refusals import BudgetExhausted
from agnes_sync.human_size import exact_size, human_size
from tests.conftest import SIGNAL_WAIT, DemoServer
from tests.test_api_http import assert_error

ARROW = {"Accept": "application/vnd.apache.arrow.stream"}


@pytest.fixture
def analyst(demo_server: DemoServer) -> Iterator[httpx.Client]:
    with demo_server.client("analyst") as client:
        yield client


@pytest.fixture
def admin(demo_server: DemoServer) -> Iterator[httpx.Client]:
    with demo_server.client("admin") as client:
        yield client
        client.put("/api/admin/server-config", json={"scan_caps": dict.fromkeys(CAP_KEYS)})


def test_local_query_result_and_provenance(analyst: httpx.Client) -> None:
    response = analyst.post(
        "/api/query", json={"sql": "SELECT status, count(*) AS n FROM orders GROUP BY 1 ORDER BY 1"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [c["name"] for c in body["columns"]] == ["status", "n"]
    assert [r[0] for r in body["rows"]] == ["cancelled", "completed", "refunded"]
    assert body["row_count"] == 3 and body["truncated"] is False and body["bytes_scanned"] == 0
    provenance = body["provenance"]
    assert (
        provenance["tables"][0]["id"] == "orders"
        and provenance["tables"][0]["query_mode"] == "local"
    )
    assert provenance["tables"][0]["freshness"] and provenance["engine"] == "duckdb (server)"
    assert provenance["row_count"] == 3 and len(provenance["fingerprint"]) == 16


def test_truncation_says_why_and_how(analyst: httpx.Client, admin: httpx.Client) -> None:
    body = analyst.post("/api/query", json={"sql": "SELECT * FROM orders", "limit": 5}).json()
    assert body["row_count"] == 5 and body["truncated"] is True
    # the limits it ran with, as the Arrow answer's x-agnes-row-limit* headers say
    assert (body["reason"], body["row_limit"], body["row_limit_source"]) == ("rows", 5, "requested")
    assert body["byte_limit"] > 0
    default = analyst.post("/api/query", json={"sql": "SELECT * FROM orders"}).json()
    assert default["row_limit_source"] == "default" and default["row_limit"] == default["row_count"]
    assert (
        body["truncation"]["reason"] == "rows" and "limit" in body["truncation"]["how_to_get_more"]
    )
    admin.put("/api/admin/server-config", json={"scan_caps": {"max_result_bytes": 2000}})
    body = analyst.post("/api/query", json={"sql": "SELECT * FROM orders", "limit": 1000}).json()
    assert body["truncated"] and body["truncation"]["reason"] == "bytes"
    # the cap is named with its value, here and on the wire a workspace reads
    assert "byte cap (max_result_bytes, 2.0 KiB)" in body["truncation"]["how_to_get_more"]
    arrow = analyst.post(
        "/api/query", json={"sql": "SELECT * FROM orders", "limit": 1000}, headers=ARROW
    )
    meta = pa.ipc.open_stream(arrow.content).read_all().schema.metadata
    assert json.loads(meta[b"agnes.byte_limit"]) == 2000


def test_the_byte_cap_holds_for_the_json_answer(analyst: httpx.Client, admin: httpx.Client) -> None:
    """The byte cap cut the Arrow answer; its JSON can be six times larger (a control
    character is written \\u0001), so 240 MB under a 256 MB cap went out as 1.4 GB."""
    cap = 64 * 1024
    admin.put("/api/admin/server-config", json={"scan_caps": {"max_result_bytes": cap}})
    try:
        sql = "SELECT i, repeat(chr(1), 1000) AS s FROM range(50) t(i)"  # 50 KB as Arrow
        answer = analyst.post("/api/query", json={"sql": sql})
        body = answer.json()
        assert answer.status_code == 200 and len(answer.content) < cap + 4096
        assert body["truncated"] is True and body["reason"] == "bytes"
        assert 0 < body["row_count"] == len(body["rows"]) < 50
        # provenance counts the rows sent, not the 50 read before the JSON was cut
        assert body["provenance"]["row_count"] == body["row_count"]
        assert [r[0] for r in body["rows"]] == list(range(body["row_count"]))
        assert "byte cap (max_result_bytes, 64.0 KiB)" in body["truncation"]["how_to_get_more"]
        plain = analyst.post("/api/query", json={"sql": "SELECT i FROM range(50) t(i)"}).json()
        assert plain["truncated"] is False and plain["row_count"] == 50
    finally:
        admin.put("/api/admin/server-config", json={"scan_caps": {"max_result_bytes": None}})


def test_the_json_answer_says_what_the_arrow_answer_notes(analyst: httpx.Client) -> None:
    """The notes about an answer (a table not yet whole; for an empty answer, the range a
    partitioned table holds) travelled with the Arrow answer and the MCP tools' only: the
    JSON answer left them out."""
    sql = "SELECT * FROM orders WHERE order_date < DATE '1990-01-01'"
    body = analyst.post("/api/query", json={"sql": sql}).json()
    arrow = analyst.post("/api/query", json={"sql": sql}, headers=ARROW)
    meta = pa.ipc.open_stream(arrow.content).read_all().schema.metadata
    assert body["row_count"] == 0
    assert body["notes"] == json.loads(meta[b"agnes.notes"])
    assert any(note.startswith("orders holds order_date from") for note in body["notes"])
    whole = analyst.post("/api/query", json={"sql": "SELECT 1 AS x"}).json()
    assert whole["notes"] == []


def test_a_remote_tables_preview_says_the_limits_that_cut_it(
    analyst: httpx.Client, admin: httpx.Client
) -> None:
    """A remote table's describe (the warehouse's preview) was cut by the byte cap but said
    neither the cap's value nor the limits it ran with (byte_limit, row_limit: null), and
    its JSON was not measured against the cap, as a local table's is."""
    admin.put("/api/admin/server-config", json={"scan_caps": {"max_result_bytes": 300}})
    body = analyst.get("/api/catalog/web_sessions/describe?n=20").json()
    assert body["provenance"]["tables"][0]["query_mode"] == "remote"
    assert body["truncated"] is True and body["reason"] == "bytes"
    assert (body["byte_limit"], body["row_limit"], body["row_limit_source"]) == (
        300,
        20,
        "requested",
    )
    assert "byte cap (max_result_bytes, 300 B)" in body["truncation"]["how_to_get_more"]
    rows = json.dumps(body["rows"], separators=(",", ":")).encode()
    assert 0 < len(body["rows"]) == body["row_count"] and len(rows) <= 300


@pytest.mark.parametrize(
    ("sql", "counted"),
    [
        ("SELECT order_id FROM orders", True),
        ("SELECT order_id FROM orders WHERE random() < 0.5", False),
        ("SELECT order_id FROM orders TABLESAMPLE 50 ROWS", False),
        ("SELECT order_id FROM orders USING SAMPLE 30 ROWS", False),
        ("SELECT order_id, uuid() AS u FROM orders", False),
    ],
)
def test_a_cut_answer_is_counted_only_when_a_second_run_gives_the_same(
    analyst: httpx.Client, sql: str, counted: bool
) -> None:
    """The whole answer's rows are counted by running the query again: a random filter
    or sample gave "the first 1,000 of 954 rows". Such a query is not counted."""
    body = analyst.post("/api/query", json={"sql": sql, "limit": 10}).json()
    assert body["truncated"] is True and body["row_count"] == 10
    if counted:
        assert body["total_rows"] > 10
        assert f"of {body['total_rows']:,} rows" in body["truncation"]["how_to_get_more"]
    else:
        assert body["total_rows"] is None
        assert "These are the first 10 rows:" in body["truncation"]["how_to_get_more"]


@pytest.mark.parametrize(
    ("sql", "status", "code"),
    [
        ("SELECT '" + "x" * 100_000 + "' AS x", 400, "sql_too_large"),
        ("SELECT " + "+".join(["1"] * 5000) + " AS x", 400, "sql_too_large"),
    ],
)
def test_too_large_sql_is_refused_alike_on_every_path(
    demo_server: DemoServer, analyst: httpx.Client, sql: str, status: int, code: str
) -> None:
    """REST refused SQL over 100,000 characters as 422 invalid_request (MCP: sql_too_large),
    and SQL nested past DuckDB's depth as sql_parse_error advising a SET no query may run."""
    for path in ("/api/query", "/api/query/estimate"):
        error = assert_error(analyst.post(path, json={"sql": sql}), status, code)
        assert "SET" not in error["message"] + (error["hint"] or "")


def test_the_engines_advice_to_change_a_setting_is_not_passed_on(analyst: httpx.Client) -> None:
    error = assert_error(
        analyst.post("/api/query", json={"sql": "SELECT order_id // 0 AS x FROM orders"}),
        400,
        "query_failed",
    )
    assert "Division by zero" in error["message"] and "TRY(" in error["message"]
    assert "SET" not in error["message"] and "error_on_division_by_zero" not in error["message"]


def test_arrow_ipc_result(analyst: httpx.Client) -> None:
    response = analyst.post(
        "/api/query",
        json={"sql": "SELECT order_id, order_date FROM orders ORDER BY 1", "limit": 10},
        headers=ARROW,
    )
    assert response.headers["content-type"] == "application/vnd.apache.arrow.stream"
    table = pa.ipc.open_stream(response.content).read_all()
    assert table.num_rows == 10 and table.column_names == ["order_id", "order_date"]
    assert pa.types.is_date(table.schema.field("order_date").type)
    metadata = table.schema.metadata
    assert json.loads(metadata[b"agnes.truncated"]) is True
    assert json.loads(metadata[b"agnes.provenance"])["tables"][0]["id"] == "orders"
    assert response.headers["x-agnes-row-count"] == "10"


def test_remote_query_reports_bytes_and_budget(analyst: httpx.Client) -> None:
    sql = "SELECT device, count(*) AS n FROM web_sessions WHERE event_date >= DATE '2026-10-01' GROUP BY 1"
    estimate = analyst.post("/api/query/estimate", json={"sql": sql}).json()
    assert estimate["engine"] == "duckdb_warehouse" and estimate["tables"] == ["web_sessions"]
    assert estimate["estimated_scan_bytes"] > 0
    assert estimate["detail"]["tables"]["web_sessions"]["pruned_on"] == ["event_date"]
    body = analyst.post("/api/query", json={"sql": sql}).json()
    # Charged what the engine measured it read: the estimate's blocks, plus at most a few
    # pages of metadata, never the estimate itself.
    estimated = estimate["estimated_scan_bytes"]
    assert estimated <= body["bytes_scanned"] <= estimated + 64 * 1024
    assert (
        body["remaining_budget_bytes"] <= estimate["remaining_budget_bytes"] - body["bytes_scanned"]
    )
    assert body["provenance"]["engine"] == "duckdb_warehouse"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) AS n FROM (SELECT * FROM {t} TABLESAMPLE 10 ROWS)",
        "SELECT * FROM {t} PIVOT (count(*) FOR device IN ('mobile', 'desktop')) "
        "ORDER BY ALL LIMIT 3",
        "SELECT k, count(*) AS n FROM {t} UNPIVOT (v FOR k IN (pageviews, duration_seconds)) "
        "GROUP BY k ORDER BY k",
        "SELECT count(*) AS n FROM {t} AS w TABLESAMPLE 10 ROWS WHERE w.device = 'mobile'",
    ],
)
def test_a_remote_query_keeps_every_clause_written_on_the_table(
    analyst: httpx.Client, sql: str
) -> None:
    """A remote table named by its id is renamed to its warehouse path, and only renamed:
    TABLESAMPLE, PIVOT and UNPIVOT were dropped with the old name (20,000,000 rows counted
    for a sample of 10, the rows un-pivoted), answers reported as complete."""
    by_id = analyst.post("/api/query", json={"sql": sql.format(t="web_sessions")})
    by_path = analyst.post("/api/query", json={"sql": sql.format(t="warehouse.main.web_sessions")})
    assert by_id.status_code == by_path.status_code == 200, (by_id.text, by_path.text)
    mine, theirs = by_id.json(), by_path.json()
    assert mine["provenance"]["engine"] == "duckdb_warehouse"
    assert [c["name"] for c in mine["columns"]] == [c["name"] for c in theirs["columns"]]
    names = [c["name"] for c in mine["columns"]]
    if "TABLESAMPLE" in sql:
        assert mine["rows"][0][0] <= 10
    elif "UNPIVOT" in sql:
        assert [r[0] for r in mine["rows"]] == ["duration_seconds", "pageviews"]
        assert mine["rows"] == theirs["rows"]
    else:  # grouped by the other columns, a count per device
        assert names[-2:] == ["mobile", "desktop"] and "device" not in names
        assert mine["rows"] == theirs["rows"]


def test_scan_cap_refusal_offers_a_narrower_snapshot(
    analyst: httpx.Client, admin: httpx.Client
) -> None:
    assert (
        admin.put("/api/admin/server-config", json={"scan_caps": {"per_query_bytes": 1}}).json()[
            "scan_caps"
        ]["per_query_bytes"]
        == 1
    )
    error = assert_error(
        analyst.post("/api/query", json={"sql": "SELECT session_id, device FROM web_sessions"}),
        400,
        "remote_scan_too_large",
    )
    assert error["details"]["limit_bytes"] == 1 and error["details"]["scan_bytes"] > 1
    assert error["details"]["tables"] == ["web_sessions"]
    # readable and exact, naming the setting: "11.5 KiB (11,776 bytes); the cap is 1 B"
    scanned = error["details"]["scan_bytes"]
    assert f"would scan {human_size(scanned)} ({scanned:,} bytes)" in error["message"]
    assert error["message"].endswith("the cap is 1 B (per_query_bytes).")
    step = error["next_step"]
    assert step["tool"] == "snapshot_create"
    assert (
        step["arguments"]["select"] == ["device", "session_id"]
        and "event_date" in step["arguments"]["where"]
    )


def test_daily_budget_and_concurrency(
    demo_server: DemoServer, analyst: httpx.Client, admin: httpx.Client
) -> None:
    services = demo_server.live.services
    principal = services.tokens.authenticate(demo_server.analyst_token)
    spent = services.query.budget.spent(principal)
    admin.put("/api/admin/server-config", json={"scan_caps": {"per_user_daily_bytes": spent + 1}})
    error = assert_error(
        analyst.post("/api/query", json={"sql": "SELECT * FROM web_sessions"}),
        429,
        "budget_exhausted",
    )
    assert error["details"]["remaining_bytes"] == 1
    assert (
        f"1 B of today's {exact_size(spent + 1)} (per_user_daily_bytes) remain" in error["message"]
    )

    admin.put(
        "/api/admin/server-config",
        json={"scan_caps": {"per_user_daily_bytes": None, "concurrent_remote_queries_per_user": 1}},
    )
    entered, release = threading.Event(), threading.Event()

    def occupy() -> None:
        with services.query.budget.slot(principal):
            entered.set()
            release.wait(SIGNAL_WAIT)

    holder = threading.Thread(target=occupy)
    holder.start()
    assert entered.wait(SIGNAL_WAIT)
    try:
        assert_error(
            analyst.post(
                "/api/query", json={"sql": "SELECT count(*) FROM web_sessions WHERE device = 'x'"}
            ),
            429,
            "too_many_concurrent",
        )
    finally:
        release.set()
        holder.join()
    assert (
        analyst.post(
            "/api/query", json={"sql": "SELECT count(*) FROM web_sessions WHERE device = 'x'"}
        ).status_code
        == 200
    )


def test_the_daily_budget_holds_against_a_zero_estimate_and_concurrent_queries(
    demo_server: DemoServer,
    analyst: httpx.Client,
    admin: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing left: refused, whatever the estimate. Some left: each running query holds
    what it may read, so queries at once cannot pass the budget together, and the read
    meter stops a query whose estimate was too low at what is left."""
    from agnes_mcp.rails.engine import Estimate
    from connectors.duckdb_warehouse.engine import DuckDBWarehouseEngine

    services = demo_server.live.services
    budget = services.query.budget
    principal = services.tokens.authenticate(demo_server.analyst_token)
    sql = "SELECT count(DISTINCT customer_id) FROM web_sessions"
    one = analyst.post("/api/query", json={"sql": sql}).json()["bytes_scanned"]
    assert one > 0
    try:
        spent = budget.spent(principal)
        admin.put("/api/admin/server-config", json={"scan_caps": {"per_user_daily_bytes": spent}})
        with pytest.raises(BudgetExhausted):
            budget.check_daily(principal, 0)  # an estimate of 0 with nothing left
        daily = spent + one + one // 2
        admin.put("/api/admin/server-config", json={"scan_caps": {"per_user_daily_bytes": daily}})
        with budget.reserve(principal, one) as held:  # a query of theirs is running
            assert held == one + one // 2  # all that is left: the most it may read
            with pytest.raises(BudgetExhausted), budget.reserve(principal, 1):
                pass  # nothing is left beside the running query's hold
        assert analyst.post("/api/query", json={"sql": sql}).status_code == 200
        # an estimator blind spot (as method-call syntax was): the meter stops the read
        monkeypatch.setattr(DuckDBWarehouseEngine, "estimate", lambda *_: Estimate(0))
        stopped = assert_error(
            analyst.post("/api/query", json={"sql": sql}), 429, "budget_exhausted"
        )
        assert "stopped after reading" in stopped["message"]
        assert budget.spent(principal) <= daily + (1 << 20)  # the meter's granularity
    finally:
        admin.put("/api/admin/server-config", json={"scan_caps": {"per_user_daily_bytes": None}})


def test_timeouts_are_typed(
    demo_server: DemoServer, analyst: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo_server.live.services.settings, "query_timeout_seconds", 0.2)
    assert_error(
        analyst.post("/api/query", json={"sql": "SELECT count(*) FROM range(100000000000)"}),
        504,
        "query_timeout",
    )
    assert_error(
        analyst.post(
            "/api/query", json={"sql": "SELECT count(*) FROM web_sessions w, range(100000000) r"}
        ),
        504,
        "query_timeout",
    )


def test_every_query_is_audited(demo_server: DemoServer, analyst: httpx.Client) -> None:
    services = demo_server.live.services
    analyst.post("/api/query", json={"sql": "SELECT count(*) AS audited FROM orders"})
    analyst.post("/api/query", json={"sql": "SELECT * FROM support_tickets /* audited */"})
    analyst.post(
        "/api/query",
        json={"sql": "SELECT count(*) AS audited_remote FROM web_sessions WHERE device = 'tablet'"},
    )
    services.write_behind.flush()
    rows = [r for r in services.audit_log.recent(limit=200) if "audited" in r.params.get("sql", "")]
    by_sql = {r.params["sql"]: r for r in rows}
    ok = by_sql["SELECT count(*) AS audited FROM orders"]
    assert (ok.action, ok.result, ok.params["tables"], ok.params["engine"]) == (
        "query",
        "ok",
        ["orders"],
        "duckdb (server)",
    )
    assert ok.params["fingerprint"] and ok.params["rows"] == 1 and ok.duration_ms is not None
    refused = by_sql["SELECT * FROM support_tickets /* audited */"]
    assert refused.result == "table_not_found" and refused.params["fingerprint"]
    remote = by_sql["SELECT count(*) AS audited_remote FROM web_sessions WHERE device = 'tablet'"]
    # Both are recorded: the estimate, and what was measured (and charged).
    assert 0 < remote.params["bytes_estimated"] <= remote.params["bytes_scanned"]


def test_snapshots(analyst: httpx.Client) -> None:
    spec = {
        "table_id": "web_sessions",
        "select": ["session_id", "event_date", "device"],
        "where": "event_date >= DATE '2026-10-01' AND device <> 'tablet'",
        "order_by": ["session_id DESC"],
        "limit": 50,
    }
    estimate = analyst.post("/api/snapshots/estimate", json=spec).json()
    assert estimate["estimated_scan_bytes"] > 0 and estimate["estimated_result_rows"] == 50
    assert estimate["estimated_result_bytes"] > 0 and "ORDER BY" in estimate["sql"]
    response = analyst.post("/api/snapshots", json=spec)
    table = pa.ipc.open_stream(response.content).read_all()
    assert table.num_rows == 50 and table.column_names == ["session_id", "event_date", "device"]
    ids = table.column("session_id").to_pylist()
    assert ids == sorted(ids, reverse=True) and "tablet" not in table.column("device").to_pylist()
    metadata = table.schema.metadata
    assert (
        json.loads(metadata[b"agnes.table_id"]) == "web_sessions"
        and json.loads(metadata[b"agnes.bytes_scanned"]) > 0
    )


def test_a_kept_snapshot_cut_by_its_limit_says_so_over_rest(analyst: httpx.Client) -> None:
    """``truncated: true`` alone does not tell a reader what is missing or how to get it:
    a kept snapshot's REST answers carry the sentence the MCP tools give."""
    spec = {
        "table_id": "web_sessions",
        "select": ["session_id", "device"],
        "where": "event_date >= DATE '2026-10-01'",
        "order_by": ["session_id"],
    }
    cut = analyst.post("/api/snapshots/stored", json={**spec, "limit": 5, "name": "rest_cut"})
    whole = analyst.post(
        "/api/snapshots/stored",
        json={**spec, "where": "session_id = -1", "limit": 5, "name": "rest_whole"},
    )
    try:
        assert cut.status_code == 200 and whole.status_code == 200
        assert cut.json()["truncated"] and "Cut by its own limit" in cut.json()["notes"][0]
        listed = {s["name"]: s for s in analyst.get("/api/snapshots/stored").json()["snapshots"]}
        notes = listed["rest_cut"]["notes"]
        assert len(notes) == 1 and "first 5 rows in the order session_id" in notes[0]
        assert "larger limit" in notes[0]
        assert not listed["rest_whole"]["truncated"] and listed["rest_whole"]["notes"] == []
        # and REST queries read it by name, as MCP ones do (docs/api.md said so; it was 404)
        read = analyst.post("/api/query", json={"sql": "SELECT count(*) AS n FROM rest_cut"})
        assert read.status_code == 200 and read.json()["rows"] == [[5]]
        local = analyst.post("/api/query", json={"sql": "SELECT 1 FROM rest_cut", "mode": "local"})
        assert local.status_code == 200
    finally:
        for name in ("rest_cut", "rest_whole"):
            analyst.delete(f"/api/snapshots/stored/{name}")


@pytest.mark.parametrize(
    ("spec", "status", "code", "words"),
    [
        (
            {"table_id": "web_sessions", "select": ["sesion_id"]},
            400,
            "snapshot_invalid",
            "Did you mean 'session_id'",
        ),
        (
            {"table_id": "web_sessions", "select": ["device"], "where": "device IN (SELECT 1)"},
            400,
            "snapshot_invalid",
            "subqueries",
        ),
        (
            {"table_id": "web_sessions", "select": ["device"], "where": "count(*) > 1"},
            400,
            "snapshot_invalid",
            "aggregate",
        ),
        (
            {
                "table_id": "web_sessions",
                "select": ["device"],
                "where": "read_csv('/etc/passwd') IS NULL",
            },
            400,
            "snapshot_invalid",
            "not allowed",
        ),
        (
            {
                "table_id": "web_sessions",
                "select": ["device"],
                "where": "event_date >= DATE_SUB(CURRENT_DATE(), INTERVAL 30 DAY)",
            },
            400,
            "snapshot_invalid",
            "cannot be applied to web_sessions's columns",
        ),
        (
            {"table_id": "web_sessions", "select": ["device"], "where": "device > 10"},
            400,
            "snapshot_invalid",
            "cannot be applied",
        ),
        (
            {"table_id": "web_sessions", "select": ["device"], "where": "nope = 1"},
            400,
            "snapshot_invalid",
            "not a column",
        ),
        (
            {"table_id": "web_sessions", "select": ["device"], "order_by": ["device sideways"]},
            400,
            "snapshot_invalid",
            "ASC|DESC",
        ),
        (
            {"table_id": "orders", "select": ["order_id"]},
            400,
            "snapshot_invalid",
            "held by the server",
        ),
        (
            {"table_id": "support_tickets", "select": ["ticket_id"]},
            404,
            "table_not_found",
            "support_tickets",
        ),
        ({"table_id": "ghost", "select": ["x"]}, 404, "table_not_found", "ghost"),
    ],
)
def test_bad_snapshots_are_explained(
    analyst: httpx.Client, spec: dict, status: int, code: str, words: str
) -> None:
    error = assert_error(analyst.post("/api/snapshots", json=spec), status, code)
    assert words in error["message"] + (error["hint"] or "")
    if "cannot be applied" in words:  # priced as if it could run: refused alike
        estimated = analyst.post("/api/snapshots/estimate", json=spec)
        assert words in assert_error(estimated, status, code)["message"]


def test_hybrid_is_for_admins_and_joins(analyst: httpx.Client, admin: httpx.Client) -> None:
    body = {
        "sql": "SELECT c.segment, count(*) AS sessions FROM recent r JOIN customers c USING (customer_id) GROUP BY 1 ORDER BY 1",
        "register_remote": {
            "recent": "SELECT customer_id FROM web_sessions WHERE customer_id IS NOT NULL AND event_date >= DATE '2026-09-01'"
        },
    }
    assert_error(analyst.post("/api/query/hybrid", json=body), 403, "admin_required")
    result = admin.post("/api/query/hybrid", json=body).json()
    assert [r[0] for r in result["rows"]] == ["enterprise", "mid_market", "smb"]
    assert result["bytes_scanned"] > 0
    bad = {**body, "register_remote": {"orders": "SELECT 1 FROM web_sessions"}}
    refused = assert_error(admin.post("/api/query/hybrid", json=bad), 400, "snapshot_invalid")
    # said about aliases, not about a snapshot's columns and predicate
    assert "alias" in refused["hint"] and "predicate" not in refused["hint"]
    tables = {t["id"]: t["query_mode"] for t in result["provenance"]["tables"]}
    assert tables == {"customers": "local", "web_sessions": "remote"}


def test_a_hybrid_query_counts_its_parts_bytes_once(
    demo_server: DemoServer, admin: httpx.Client
) -> None:
    """The parts are audited (and charged) on rows of their own: the hybrid's row named
    their bytes again, so the budget counted after a restart, usage and the overview
    counted them twice."""
    services = demo_server.live.services
    principal = services.tokens.authenticate(demo_server.admin_token)
    body = {
        "sql": "SELECT count(*) AS n FROM r /* counted once */",
        "register_remote": {"r": "SELECT session_id FROM web_sessions WHERE device = 'tablet'"},
    }
    before = services.query.budget.spent(principal)
    answer = admin.post("/api/query/hybrid", json=body).json()
    assert answer["bytes_scanned"] > 0  # the answer still says what its parts read
    spent = services.query.budget.spent(principal)
    assert spent == before + answer["bytes_scanned"]
    services.write_behind.flush()
    rows = [r for r in services.audit_log.recent(limit=20) if "counted once" in str(r.params)]
    assert [r.action for r in rows] == ["query.hybrid"]
    assert "bytes_scanned" not in rows[0].params
    assert rows[0].params["bytes_scanned_in_parts"] == answer["bytes_scanned"]
    # what the server counts from the log after a restart: the same spend
    restarted = ScanBudget(services.settings, services.server_config, services.store)
    assert restarted.spent(principal) == spent


def test_hybrid_never_joins_a_remote_part_the_caps_cut(admin: httpx.Client) -> None:
    """A part cut to max_result_rows was joined as if whole: a count of 100,000 for
    599,033 sessions, answered as complete. Now the query does not run, and says why."""
    counted = {
        "sql": "SELECT count(*) AS n FROM w",
        "register_remote": {"w": "SELECT session_id FROM web_sessions WHERE device = 'mobile'"},
    }
    whole = admin.post("/api/query/hybrid", json=counted).json()["rows"][0][0]
    assert whole > 10
    admin.put("/api/admin/server-config", json={"scan_caps": {"max_result_rows": whole - 1}})
    error = assert_error(
        admin.post("/api/query/hybrid", json=counted), 400, "remote_part_too_large"
    )
    assert error["details"] == {"alias": "w", "limit_name": "max_result_rows", "limit": whole - 1}
    assert f"{whole - 1:,} rows" in error["message"] and "aggregate" in error["hint"]
    admin.put("/api/admin/server-config", json={"scan_caps": {"max_result_rows": whole}})
    assert admin.post("/api/query/hybrid", json=counted).json()["rows"] == [[whole]]


def test_server_config_is_admin_only_and_validated(
    analyst: httpx.Client, admin: httpx.Client
) -> None:
    assert_error(analyst.get("/api/admin/server-config"), 403, "admin_required")
    assert_error(
        admin.put("/api/admin/server-config", json={"scan_caps": {"per_query_bytess": 1}}),
        422,
        "invalid_request",
    )
    assert_error(
        admin.put("/api/admin/server-config", json={"scan_caps": {"per_query_bytes": "lots"}}),
        422,
        "invalid_request",
    )
    changed = admin.put(
        "/api/admin/server-config", json={"scan_caps": {"per_query_bytes": "1GiB"}}
    ).json()
    assert changed["scan_caps"]["per_query_bytes"] == 1024**3 and changed["overrides"] == {
        "per_query_bytes": 1024**3
    }
    reset = admin.put(
        "/api/admin/server-config", json={"scan_caps": {"per_query_bytes": None}}
    ).json()
    assert reset["overrides"] == {} and reset["scan_caps"]["per_query_bytes"] == 5 * 1024**3


def test_a_snapshot_of_a_local_table_points_at_the_ready_query(analyst: httpx.Client) -> None:
    spec = {"table_id": "orders", "select": ["order_id"], "where": "status = 'refunded'"}
    error = assert_error(analyst.post("/api/snapshots", json=spec), 400, "snapshot_invalid")
    step = error["next_step"]
    assert step["tool"] == "query"
    sql = "SELECT order_id FROM orders WHERE status = 'refunded'"
    assert step["arguments"] == {"sql": sql} and step["cli"] == f'agnes query "{sql}"'
    ran = analyst.post("/api/query", json=step["arguments"])
    assert ran.status_code == 200, ran.text


@pytest.mark.parametrize("value", [0, 10**40 - 1, "2PiB"])
def test_byte_caps_out_of_range_are_refused(admin: httpx.Client, value: object) -> None:
    answer = admin.put("/api/admin/server-config", json={"scan_caps": {"per_query_bytes": value}})
    assert_error(answer, 422, "invalid_request")


DATA_ROUTES = [  # (method, path, body, what the route answers in, its default first)
    ("GET", "/api/catalog/orders/describe?n=3", None, ("json", "arrow")),
    ("POST", "/api/query", {"sql": "SELECT order_id FROM orders LIMIT 3"}, ("json", "arrow")),
    (
        "POST",
        "/api/metrics/revenue/total_revenue/query",
        {"limit": 3},
        ("json", "arrow"),
    ),
    (
        "POST",
        "/api/snapshots",
        {"table_id": "web_sessions", "select": ["session_id"], "limit": 3},
        ("arrow",),
    ),
]


def answered_in(response: httpx.Response) -> str:
    kind = response.headers["content-type"].split(";")[0]
    return {"application/json": "json", ARROW["Accept"]: "arrow"}[kind]


@pytest.mark.parametrize(("method", "path", "body", "offers"), DATA_ROUTES)
def test_data_routes_answer_in_the_type_asked_for_or_406(
    analyst: httpx.Client, method: str, path: str, body: dict | None, offers: tuple[str, ...]
) -> None:
    """`/describe` answered Arrow whatever the Accept header said (a JSON client got IPC
    bytes), and every data route answered something for an Accept it cannot meet. Each
    answers JSON or Arrow as asked, its default for none or */*, and `406 not_acceptable`
    naming what it can produce otherwise."""

    def ask(accept: str | None) -> httpx.Response:
        headers = {"Accept": accept} if accept is not None else {}
        return analyst.request(method, path, json=body, headers=headers)

    for accept in (None, "*/*", "application/*;q=0.5, text/html"):
        response = ask(accept)
        assert response.status_code == 200, response.text
        assert answered_in(response) == offers[0], accept
    if "json" in offers:
        response = ask("application/json")
        assert answered_in(response) == "json" and response.json()["row_count"] == 3
        assert len(response.json()["rows"]) == 3
        assert answered_in(ask(f"{ARROW['Accept']}, application/json;q=0.9")) == "arrow"
        assert answered_in(ask(f"application/json, {ARROW['Accept']}")) == "json"
        # a q that is no number in 0..1 counts as 0 (NaN was taken as the best)
        assert answered_in(ask(f"application/json;q=nan, {ARROW['Accept']};q=0.5")) == "arrow"
    arrow = ask(ARROW["Accept"])
    assert answered_in(arrow) == "arrow"
    assert pa.ipc.open_stream(arrow.content).read_all().num_rows == 3
    refused = ["text/csv", f"{ARROW['Accept']};q=0, application/json;q=0"]
    if "json" not in offers:
        refused.append("application/json")
    for accept in refused:
        error = assert_error(ask(accept), 406, "not_acceptable")
        assert error["details"]["offered"] and ARROW["Accept"] in error["message"]
        said = "admits neither" if len(offers) > 1 else "does not admit it"
        assert said in error["message"], error
