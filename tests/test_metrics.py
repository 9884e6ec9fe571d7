"""Metric definitions: validation with file/line/key problems, compilation for DuckDB and
BigQuery, admin import/export over the API and CLI, and the starter pack on demo data."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import duckdb
import httpx
import pyarrow as pa
import pytest
import sqlglot
import yaml

from agnes_mcp.demo import starter_metrics_dir
from agnes_mcp.metrics.compiler import (
    MetricRequest,
    MetricRequestInvalid,
    TimeRange,
    compile_metric,
)
from agnes_mcp.metrics.definition import MetricDefinition
from agnes_mcp.metrics.loader import MetricsInvalid, load_texts, read_directory
from agnes_mcp.resource_types import ResourceType
from agnes_mcp.services import Services
from cli import exit_codes
from cli.main import main
from tests.conftest import DemoServer
from tests.test_api_http import assert_error

REVENUE = MetricDefinition.model_validate(
    {
        "name": "total_revenue",
        "display_name": "Total revenue",
        "category": "revenue",
        "description": "Completed orders.",
        "type": "sum",
        "grain": "month",
        "table": "orders",
        "expression": "sum(total_amount) FILTER (WHERE channel <> 'partner')",
        "time_column": "order_date",
        "filters": ["status = 'completed'"],
        "dimensions": [{"name": "channel"}, {"name": "year", "expression": "year(order_date)"}],
        "sql_by_channel": "SELECT channel, sum(total_amount) AS total_revenue FROM orders GROUP BY 1",
    }
)


# --- definitions -----------------------------------------------------------------------------


BAD_FILE = """\
metrics:
  - name: ok_one
    display_name: OK
    category: sales
    description: fine
    type: count
    table: orders
    expression: count(*)
  - name: Bad Name
    display_name: Bad
    category: sales
    description: a name that breaks the pattern
    type: count
    table: orders
    expression: count(*)
  - name: no_aggregate
    display_name: Bad
    category: sales
    description: no aggregate and an unknown key
    type: count
    table: orders
    expression: total_amount
    colour: blue
"""


def test_every_problem_is_named_with_file_line_and_key() -> None:
    with pytest.raises(MetricsInvalid) as raised:
        load_texts(
            {
                "sales.yml": BAD_FILE,
                "broken.yml": "metrics: [\n  - name: x\n",
                "dup.yml": BAD_FILE.split("  - name: Bad Name")[0],
            }
        )
    problems = [str(p) for p in raised.value.problems]
    joined = "\n".join(problems)
    assert "sales.yml, line 9: metrics.1.name" in joined  # the pattern
    assert "'expression' must aggregate" in joined
    assert "unknown key 'colour'" in joined
    assert any(p.startswith("broken.yml") and "not valid YAML" in p for p in problems)
    assert "sales.yml: sales/ok_one: is defined twice (also in dup.yml)" in problems  # both files
    assert raised.value.code == "metrics_invalid" and len(raised.value.details["problems"]) == len(
        problems
    )


def test_a_file_that_is_not_utf8_text_is_a_problem_named_with_its_file(tmp_path: Path) -> None:
    (tmp_path / "windows.yml").write_bytes("metrics: []\n".encode("utf-16"))
    (tmp_path / "fine.yml").write_bytes("\ufeffmetrics: []\n".encode())  # a BOM is fine
    with pytest.raises(MetricsInvalid) as raised:
        read_directory(tmp_path)
    assert [str(p) for p in raised.value.problems] == [
        "windows.yml: is not UTF-8 text (byte 0xff at offset 0); save it as UTF-8"
    ]
    with pytest.raises(MetricsInvalid) as raised:
        load_texts({"nul.yml": "metrics:\n  - name: a\x00b\n"})
    (problem,) = [str(p) for p in raised.value.problems]
    assert "nul.yml, line 2 is not valid YAML: it holds the character #x0000" in problem
    assert "anchor" not in problem


def test_a_value_that_does_not_read_as_its_yaml_type_is_a_problem_not_a_crash() -> None:
    """An unquoted ``2026-13-45`` is a date to YAML: PyYAML raised a bare ValueError while
    building it, and ``agnes admin metrics import`` answered 500."""
    text = "metrics:\n  - name: a\n    category: x\n    description: 2026-13-45\n"
    with pytest.raises(MetricsInvalid) as raised:
        load_texts({"dated.yml": text, "tagged.yml": "metrics: !custom []\n"})
    assert [str(p) for p in raised.value.problems] == [
        "dated.yml: dated.yml, line 4, column 18 is not valid YAML: '2026-13-45' is not a valid timestamp "
        "(month must be in 1..12); quote it to keep it as text.",
        "tagged.yml: tagged.yml, line 1, column 10 is not valid YAML: could not determine a constructor "
        "for the tag '!custom'.",
    ]


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("SELECT count(*) AS n FROM support_tickets", "reads 'support_tickets'"),
        ("SELECT count(*) AS n FROM read_csv('/etc/passwd')", "would be refused"),
        ("SELECT count(*) AS n FROM orders, duckdb_settings()", "would be refused"),
    ],
)
def test_an_import_refuses_sql_no_one_could_run(sql: str, words: str) -> None:
    """A custom SQL metric reading a table it does not list (its grants follow the list),
    or calling what the rails refuse, was imported and failed at every query."""
    text = (
        "metrics:\n  - name: custom\n    display_name: Custom\n    category: ops\n"
        "    description: d\n    type: count\n    tables: [orders]\n"
        f'    sql: "{sql}"\n'
    )
    with pytest.raises(MetricsInvalid) as refused:
        load_texts({"custom.yml": text})
    assert words in str(refused.value)
    fine = text.replace(sql, "SELECT count(*) AS n FROM orders o JOIN orders p USING (order_id)")
    assert [m.id for m in load_texts({"custom.yml": fine})] == ["ops/custom"]


@pytest.mark.parametrize(
    ("part", "words"),
    [
        (
            "    filters:\n      - customer_id IN (SELECT customer_id FROM support_tickets)\n",
            "reads 'support_tickets'",
        ),
        ("    dimensions:\n      - name: home\n        expression: getenv('HOME')\n", "refused"),
    ],
)
def test_an_import_refuses_an_expression_metric_no_one_could_run(part: str, words: str) -> None:
    """A filter reading a table the metric does not list, or a dimension calling what the
    rails refuse, was imported and failed at every query."""
    text = (
        "metrics:\n  - name: custom\n    display_name: Custom\n    category: ops\n"
        "    description: d\n    type: count\n    table: orders\n"
        "    expression: count(*)\n" + part
    )
    with pytest.raises(MetricsInvalid) as refused:
        load_texts({"custom.yml": text})
    assert words in str(refused.value)


@pytest.mark.parametrize(
    ("patch", "words"),
    [
        ({"expression": None, "sql": None}, "give 'expression' and 'table'"),
        ({"grain": "month", "time_column": None}, "'grain' needs a 'time_column'"),
        ({"sql_by_colour": "SELECT 1"}, "names no dimension"),
        ({"filters": ["status = "]}, "filters[0] does not parse: Required keyword: "),
        ({"expression": "sum((("}, "missing for Paren (line 1, column 6)"),  # no <class ...>
        ({"expression": "sum(x) + (SELECT 1)"}, "may not hold a subquery"),
        (
            {"sql": "DELETE FROM orders", "tables": ["orders"], "expression": None},
            "must be one SELECT",
        ),
        ({"dimensions": [{"name": "a"}, {"name": "a"}]}, "unique"),
    ],
)
def test_definition_rules(patch: dict[str, object], words: str) -> None:
    data = {**REVENUE.model_dump(exclude_defaults=True), **patch}
    with pytest.raises(ValueError) as raised:
        MetricDefinition.model_validate(data)
    assert words in str(raised.value)


# --- compiling -------------------------------------------------------------------------------


def test_compiles_for_duckdb_and_bigquery() -> None:
    request = MetricRequest(
        dimensions=["year"],
        filters={"channel": ["web", "store"], "year": 2025},
        grain="quarter",
        time_range=TimeRange(start=dt.date(2025, 1, 1), end=dt.date(2026, 1, 1)),
    )
    duck = compile_metric(REVENUE, request, "duckdb")
    assert duck.variant == "expression"
    assert "CAST(DATE_TRUNC('QUARTER', order_date) AS DATE) AS period" in duck.sql
    assert "SUM(total_amount) FILTER(WHERE channel <> 'partner') AS total_revenue" in duck.sql
    assert "YEAR(order_date) AS year" in duck.sql
    assert "channel IN ('web', 'store')" in duck.sql and "YEAR(order_date) = 2025" in duck.sql
    assert "order_date >= CAST('2025-01-01' AS DATE)" in duck.sql and "GROUP BY 1, 2" in duck.sql
    bigquery = compile_metric(REVENUE, request, "bigquery")
    assert "DATE_TRUNC(order_date, QUARTER)" in bigquery.sql
    assert "SUM(IF(channel <> 'partner', total_amount, NULL))" in bigquery.sql
    assert "EXTRACT(YEAR FROM order_date) = 2025" in bigquery.sql
    for sql, dialect in ((duck.sql, "duckdb"), (bigquery.sql, "bigquery")):
        sqlglot.parse_one(sql, dialect=dialect)  # each parses in its own dialect
    by_channel = compile_metric(REVENUE, MetricRequest(dimensions=["channel"]), "duckdb")
    assert by_channel.variant == "sql_by_channel" and by_channel.sql.startswith("SELECT channel")
    with pytest.raises(MetricRequestInvalid, match="breakdown by channel is its own SQL"):
        compile_metric(REVENUE, MetricRequest(dimensions=["channel"], grain="year"), "duckdb")
    total = compile_metric(REVENUE, MetricRequest(grain="total"), "duckdb")
    assert "period" not in total.sql and "GROUP BY" not in total.sql


@pytest.mark.parametrize("dialect", ["duckdb", "bigquery"])
def test_a_null_among_filter_values_matches_the_null_rows(dialect: str) -> None:
    """A list filter compiled to ``channel IN ('web', NULL)``, which matches no row whose
    channel is NULL: asking for ["web", null] silently left those rows out (a single null
    already read ``IS NULL``)."""
    db = duckdb.connect()
    db.execute(
        "CREATE TABLE orders AS SELECT * FROM (VALUES "
        "(DATE '2025-01-02', 'web', 10.0), (DATE '2025-01-03', NULL, 5.0), "
        "(DATE '2025-01-04', 'store', 1.0)) t(order_date, channel, total_amount)"
    )
    metric = MetricDefinition.model_validate(
        {
            "name": "revenue",
            "display_name": "Revenue",
            "description": "Revenue.",
            "category": "sales",
            "type": "sum",
            "table": "orders",
            "expression": "sum(total_amount)",
            "time_column": "order_date",
            "dimensions": [{"name": "channel"}],
        }
    )

    def total(filters: dict[str, object]) -> object:
        request = MetricRequest(filters=filters, grain="total")  # type: ignore[arg-type]
        compiled = compile_metric(metric, request, dialect)
        sql = sqlglot.transpile(compiled.sql, read=dialect, write="duckdb")[0]
        return db.execute(sql).fetchall()[0][0]

    assert total({"channel": ["web", None]}) == 15.0
    assert total({"channel": [None]}) == total({"channel": None}) == 5.0
    assert total({"channel": ["web", "store"]}) == 11.0
    assert total({"channel": []}) is None


def test_a_dimension_the_table_has_not_got_is_refused_with_the_way_to_ask() -> None:
    """'segment' comes only from sql_by_segment (orders has no segment column): combined
    with another dimension or filtered on, it failed in the engine with a binder error
    on SQL the caller never wrote."""
    metric = MetricDefinition.model_validate(
        {
            **REVENUE.model_dump(exclude_defaults=True),
            "dimensions": [
                {"name": "channel"},
                {"name": "segment"},
                {"name": "region", "expression": "upper(ship_region)"},
            ],
            "sql_by_segment": "SELECT c.segment, sum(o.total_amount) AS total_revenue "
            "FROM orders o JOIN customers c USING (customer_id) GROUP BY 1",
        }
    )
    columns = ["order_id", "order_date", "channel", "status", "total_amount"]
    for request in (
        MetricRequest(dimensions=["channel", "segment"]),
        MetricRequest(filters={"segment": "smb"}),
    ):
        with pytest.raises(MetricRequestInvalid) as refused:
            compile_metric(metric, request, "duckdb", columns)
        assert "only through its own SQL (sql_by_segment)" in refused.value.message
        assert "dimensions=['segment']" in (refused.value.hint or "")
    with pytest.raises(MetricRequestInvalid, match="reads 'ship_region'"):
        compile_metric(metric, MetricRequest(dimensions=["region"]), "duckdb", columns)
    alone = compile_metric(metric, MetricRequest(dimensions=["segment"]), "duckdb", columns)
    assert alone.variant == "sql_by_segment"
    for grain in ("quarter", "month"):  # month is the metric's own grain: its
        # expression's, not the breakdown SQL's (which gave all-time totals, said nothing)
        with pytest.raises(MetricRequestInvalid, match="breakdown by segment is its own SQL"):
            compile_metric(metric, MetricRequest(dimensions=["segment"], grain=grain), "duckdb")
    # "total" asks for no period, which is what this breakdown's SQL answers
    total = compile_metric(metric, MetricRequest(dimensions=["segment"], grain="total"), "duckdb")
    assert total.variant == "sql_by_segment" and total.sql == alone.sql
    by_month = metric.model_copy(
        update={
            "sql_by_segment": "SELECT date_trunc('month', o.order_date) AS period, c.segment, "
            "sum(o.total_amount) AS total_revenue FROM orders o JOIN customers c "
            "USING (customer_id) GROUP BY 1, 2"
        }
    )
    with pytest.raises(MetricRequestInvalid, match="breakdown by segment is its own SQL"):
        compile_metric(by_month, MetricRequest(dimensions=["segment"], grain="total"), "duckdb")
    by_channel = compile_metric(
        metric, MetricRequest(dimensions=["channel"], grain="year"), "duckdb", columns
    )
    assert "channel" in by_channel.sql  # a column the table has: combined as before


def test_timestamp_time_columns_compare_as_timestamps() -> None:
    metric = REVENUE.model_copy(update={"time_column_type": "timestamp"})
    sql = compile_metric(
        metric, MetricRequest(time_range=TimeRange(start=dt.date(2025, 1, 1))), "bigquery"
    ).sql
    assert "TIMESTAMP_TRUNC(order_date, MONTH)" in sql and "CAST('2025-01-01' AS TIMESTAMP)" in sql


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        (MetricRequest(dimensions=["colour"]), "no dimension 'colour'"),
        (MetricRequest(filters={"colour": "red"}), "no dimension 'colour'"),
        (MetricRequest(grain="hour"), "not a grain"),
        (
            MetricRequest(time_range=TimeRange(start=dt.date(2025, 2, 1), end=dt.date(2025, 1, 1))),
            "after",
        ),
        (
            MetricRequest(filters={"channel": [f"x{i}" for i in range(900_000)]}),
            "'channel' may take at most 1,000 values",
        ),
        (MetricRequest(filters={"channel": "x" * 1001}), "longer than 1,000 characters"),
        (MetricRequest(filters={"channel": float("nan")}), "not a finite number"),
        (
            MetricRequest(filters={f"d{i}": "x" for i in range(21)}),
            "at most 20 dimensions",
        ),
    ],
)
def test_bad_requests_are_refused(request_: MetricRequest, words: str) -> None:
    with pytest.raises(MetricRequestInvalid, match=words):
        compile_metric(REVENUE, request_, "duckdb")


# --- the starter pack on the demo -------------------------------------------------------------


def test_the_starter_pack_is_complete() -> None:
    folder = starter_metrics_dir()
    assert folder is not None and folder.name == "metrics"
    definitions = load_texts(read_directory(folder))
    ids = {m.id for m in definitions}
    assert len(definitions) >= 10
    assert {
        "revenue/total_revenue",
        "revenue/mrr",
        "revenue/arr",
        "revenue/churn_rate",
        "product/active_users",
        "product/feature_adoption",
        "sales/new_customers",
        "sales/expansion",
        "sales/pipeline",
        "operations/support_resolution_time",
    } <= ids


def _starter_ids() -> list[str]:
    folder = starter_metrics_dir()
    assert folder is not None
    return sorted(m.id for m in load_texts(read_directory(folder)))


@pytest.mark.parametrize("metric_id", _starter_ids())
def test_each_starter_metric_runs_on_the_demo_and_validates(
    demo_server: DemoServer, metric_id: str
) -> None:
    services = demo_server.live.services
    admin = services.tokens.authenticate(demo_server.admin_token)
    run = services.metric_service.run(admin, metric_id, MetricRequest(), limit=10_000)
    table, rules = run.outcome.table, run.metric.validation
    assert table.num_rows >= rules.min_rows, metric_id
    values = table.column(table.num_columns - 1).to_pylist()
    if rules.not_null:
        assert None not in values, metric_id
    numbers = [float(v) for v in values if v is not None]
    if rules.min is not None:
        assert min(numbers) >= rules.min, metric_id
    if rules.max is not None:
        assert max(numbers) <= rules.max, metric_id


def test_starter_numbers_match_raw_duckdb(demo_server: DemoServer) -> None:
    services = demo_server.live.services
    admin = services.tokens.authenticate(demo_server.admin_token)
    snapshot = services.query.catalog.current()

    def raw(sql: str, *tables: str) -> object:
        con = duckdb.connect()
        for table in tables:
            files = ", ".join(f"'{f}'" for f in snapshot.tables[table].files)
            con.execute(
                f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{files}], hive_partitioning = false)"
            )
        return con.execute(sql).fetchone()[0]  # type: ignore[index]

    def metric(metric_id: str) -> object:
        run = services.metric_service.run(admin, metric_id, MetricRequest(grain="total"))
        return run.outcome.table.column(0).to_pylist()[0]

    revenue = raw("SELECT sum(total_amount) FROM orders WHERE status = 'completed'", "orders")
    assert metric("revenue/total_revenue") == revenue
    assert metric("sales/new_customers") == raw("SELECT count(*) FROM customers", "customers")
    assert metric("revenue/arr") == 12 * raw(
        "SELECT sum(mrr) FROM subscriptions WHERE status = 'active'", "subscriptions"
    )


def test_demo_grants_metrics_over_granted_tables_only(demo_server: DemoServer) -> None:
    services = demo_server.live.services
    analyst = services.tokens.authenticate(demo_server.analyst_token)
    visible = {m.id for m in services.metric_service.visible(analyst)}
    assert "revenue/mrr" in visible and "operations/support_resolution_time" not in visible
    admin = services.tokens.authenticate(demo_server.admin_token)
    assert "operations/support_resolution_time" in {
        m.id for m in services.metric_service.visible(admin)
    }


def test_oversized_filters_are_refused_before_any_sql_is_built(demo_server: DemoServer) -> None:
    """Over REST the request schema refuses them (422, naming the field); the MCP tool's
    input schema carries the same bounds (tests/contract/mcp_tools.json)."""
    many = {"dimensions": ["channel"], "filters": {"channel": [f"x{i}" for i in range(1001)]}}
    with demo_server.live.client(demo_server.analyst_token) as client:
        answer = client.post("/api/metrics/revenue/total_revenue/query", json=many)
    assert_error(answer, 422, "invalid_request")
    assert "filters.channel" in answer.text


def test_an_arrow_answer_with_long_sql_reaches_the_client(demo_server: DemoServer) -> None:
    """The compiled SQL went out whole in an ``X-Agnes-Sql`` header too: 95 filter values of
    quotes made a 190 KB header, past what httpx reads of a response's head ("Receive
    buffer too long": the workspace, CLI and notebooks lost the answer; a proxy refuses
    one of a few KB). Long values travel in the schema metadata only."""
    values = ['"' * 990 + str(i) for i in range(95)]
    body = {"dimensions": ["channel"], "filters": {"channel": values}}
    with demo_server.live.client(demo_server.analyst_token) as client:
        answer = client.post(
            "/api/metrics/revenue/total_revenue/query",
            json=body,
            headers={"Accept": "application/vnd.apache.arrow.stream"},
        )
    assert answer.status_code == 200, answer.text
    assert sum(len(k) + len(v) for k, v in answer.headers.items()) < 8 * 1024
    assert answer.headers["x-agnes-row-count"] == "0"  # the short values are still there
    metadata = pa.ipc.open_stream(answer.content).read_all().schema.metadata
    sql = json.loads(metadata[b"agnes.sql"])
    assert values[0] in sql.replace("''", "'") and "x-agnes-sql" not in answer.headers


# --- admin import / export ---------------------------------------------------------------------


def test_a_deleted_metric_takes_its_grants_with_it(services: Services) -> None:
    """Deleted (or removed by an import with replace), a metric left its grants behind: a
    new metric of the same id was granted at once, though no one had granted it."""
    group = services.groups.add("Readers")
    other = REVENUE.model_copy(update={"name": "other_revenue"})
    for how in ("delete", "replace"):
        services.metrics.put_many([REVENUE, other], updated_by=None, replace=False)
        services.grants.add(group.id, ResourceType.METRIC, REVENUE.id, granted_by="test")
        kept = services.grants.add(group.id, ResourceType.METRIC, other.id, granted_by="test")
        if how == "delete":
            assert services.metrics.delete(REVENUE.id)
        else:
            assert services.metrics.put_many([other], updated_by=None, replace=True) == (1, 1)
        granted = services.grants.all(group_id=group.id, resource_type=ResourceType.METRIC)
        assert [g.resource_id for g in granted] == [other.id], how
        services.metrics.put_many([REVENUE], updated_by=None, replace=False)  # the same id
        granted = services.grants.all(group_id=group.id, resource_type=ResourceType.METRIC)
        assert [g.resource_id for g in granted] == [other.id], how  # not granted again
        services.grants.delete(kept.id)


def test_import_is_all_or_nothing_and_admin_only(demo_server: DemoServer) -> None:
    with demo_server.client("admin") as admin, demo_server.client("analyst") as analyst:
        before = admin.get("/api/admin/metrics/export").text
        body = {"files": {"sales.yml": BAD_FILE}}
        error = assert_error(
            admin.post("/api/admin/metrics/import", json=body), 422, "metrics_invalid"
        )
        assert any(
            p["file"] == "sales.yml" and p["line"] == 9 for p in error["details"]["problems"]
        )
        unknown_table = BAD_FILE.split("  - name: Bad Name")[0].replace(
            "table: orders", "table: ghosts"
        )
        error = assert_error(
            admin.post("/api/admin/metrics/import", json={"files": {"g.yml": unknown_table}}),
            422,
            "metrics_invalid",
        )
        assert "not a registered table" in error["message"]
        assert admin.get("/api/admin/metrics/export").text == before  # nothing changed
        assert_error(analyst.post("/api/admin/metrics/import", json=body), 403, "admin_required")
        good = {"files": {"ok.yml": BAD_FILE.split("  - name: Bad Name")[0]}, "dry_run": True}
        dry = admin.post("/api/admin/metrics/import", json=good).json()
        assert dry == {"imported": ["sales/ok_one"], "removed": 0, "dry_run": True}
        assert "ok_one" not in admin.get("/api/admin/metrics/export").text
        # with replace, the dry run says what the import would remove (it said 0, and the
        # import then removed every other metric)
        count = len(demo_server.live.services.metrics.all())
        replacing = admin.post("/api/admin/metrics/import", json={**good, "replace": True})
        assert replacing.json()["removed"] == count and replacing.json()["dry_run"] is True
        assert demo_server.live.services.metrics.all()  # nothing removed by a dry run


def test_cli_import_export_round_trip(
    demo_server: DemoServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGNES_SERVER_URL", demo_server.live.base_url)
    monkeypatch.setenv("AGNES_TOKEN", demo_server.admin_token)
    monkeypatch.setenv("AGNES_CONFIG_HOME", str(tmp_path / "cfg"))
    exported = tmp_path / "not yet" / "all.yml"  # its folder is made, not refused
    assert main(["admin", "metrics", "export", "-o", str(exported)]) == exit_codes.OK
    # --json printed the YAML document, which no JSON reader takes
    capsys.readouterr()
    assert main(["admin", "metrics", "export", "--json"]) == exit_codes.OK
    as_json = json.loads(capsys.readouterr().out)
    assert as_json == yaml.safe_load(exported.read_text()) and as_json["metrics"]
    assert main(["admin", "metrics", "export", "--json", "-o", str(exported)]) == exit_codes.OK
    assert json.loads(capsys.readouterr().out) == {"written": str(exported)}
    folder = tmp_path / "pack"
    folder.mkdir()
    (folder / "all.yml").write_text(exported.read_text())
    (folder / "extra.yaml").write_text(BAD_FILE.split("  - name: Bad Name")[0])
    assert main(["admin", "metrics", "import", str(folder), "--json"]) == exit_codes.OK
    assert "sales/ok_one" in capsys.readouterr().out
    assert main(["admin", "metrics", "delete", "sales/ok_one"]) == exit_codes.OK
    (folder / "bad.yml").write_text(BAD_FILE)
    capsys.readouterr()
    assert main(["admin", "metrics", "import", str(folder)]) == exit_codes.FAILURE
    err = capsys.readouterr().err
    assert "bad.yml, line 9: metrics.1.name" in err and "metrics_invalid" not in err
    # each problem once, on its line; the error line counts them ("1 problem(s) ...: " and
    # every problem again after the list)
    assert err.count("bad.yml, line 9: metrics.1.name") == 1 and "(s)" not in err
    assert re.search(
        r"^error: \d+ problems? in the metric definitions \(listed above\)\.$", err, re.M
    )
    (folder / "bad.yml").write_bytes("metrics: []\n".encode("utf-16"))  # not a traceback
    assert main(["admin", "metrics", "import", str(folder)]) == exit_codes.FAILURE
    assert "bad.yml: is not UTF-8 text" in capsys.readouterr().err
    with httpx.Client(base_url=demo_server.live.base_url) as anonymous:
        assert anonymous.get("/api/metrics").status_code == 401


GONE_METRIC = """
metrics:
  - name: soon_gone
    display_name: Rows of a table about to go
    category: gone
    description: counts a table that is unregistered afterwards
    type: count
    table: gone_soon
    expression: count(*)
"""


def test_a_metric_whose_table_was_unregistered_is_unavailable_not_listed(
    synced: Services,
) -> None:
    """It stayed listed (to admins) and failed at the query with table_not_found."""
    from agnes_mcp.builtin_groups import ADMIN_GROUP_ID
    from agnes_mcp.metrics.service import MetricUnavailable
    from tests.conftest import add_user, register, token_for

    register(synced, id="gone_soon", source_type="sample", source_options={"rows": 5})
    admin = synced.tokens.authenticate(
        token_for(synced, add_user(synced, groups=(ADMIN_GROUP_ID,)), admin=True)
    )
    synced.metric_service.import_texts(admin, {"gone.yml": GONE_METRIC}, replace=False)
    assert "gone/soon_gone" in {m.id for m in synced.metric_service.visible(admin)}
    synced.registry.delete("gone_soon")
    assert "gone/soon_gone" not in {m.id for m in synced.metric_service.visible(admin)}
    with pytest.raises(MetricUnavailable, match="'gone_soon', which is no longer a registered"):
        synced.metric_service.get(admin, "gone/soon_gone")


def test_a_grain_for_a_metric_without_time_says_what_to_do() -> None:
    """`agnes metrics query revenue/mrr --grain month` said only that it takes no grain."""
    timeless = REVENUE.model_copy(update={"time_column": None, "grain": None})
    with pytest.raises(MetricRequestInvalid) as refused:
        compile_metric(timeless, MetricRequest(grain="month"), "duckdb")
    assert "no time column" in refused.value.message
    assert "leave out --grain, --from and --to" in (refused.value.hint or "")
