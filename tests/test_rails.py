"""The rails against the hostile corpus, plus properties no input may break."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agnes_mcp.auth.principal import Principal
from agnes_mcp.rails import policy
from agnes_mcp.rails.refusals import QueryRefused, SqlParseError
from agnes_mcp.rails.sandbox import Sandbox
from agnes_mcp.rails.tables import CatalogTable
from tests.conftest import DemoServer
from tests.rails_corpus import CASES

assert len(CASES) >= 200


@pytest.fixture(scope="module")
def analyst(demo_server: DemoServer) -> Principal:
    return demo_server.live.services.tokens.authenticate(demo_server.analyst_token)


@pytest.mark.parametrize(
    ("mode", "sql", "expected"), CASES, ids=[f"{i:03d}" for i in range(len(CASES))]
)
def test_corpus(
    demo_server: DemoServer, analyst: Principal, mode: str, sql: str, expected: str
) -> None:
    service = demo_server.live.services.query
    if expected == "ok":
        outcome = service.run(analyst, sql, mode=mode, limit=10)
        assert outcome.table.num_rows <= 10
    else:
        with pytest.raises(QueryRefused) as caught:
            service.run(analyst, sql, mode=mode, limit=10)
        assert caught.value.code == expected, caught.value.message
        assert caught.value.message and caught.value.hint


def test_the_corpus_runs_on_tables_converted_as_a_server_reads_them(
    demo_server: DemoServer, analyst: Principal
) -> None:
    service = demo_server.live.services.query
    catalog = service.catalog.current()
    granted = [t for t in service._granted_local(analyst, catalog) if t.files]
    assert granted and service.sandboxes.get(granted, catalog.version).converted == len(granted)
    # and the single-threaded twin that queries on small tables run in
    twin = service.sandboxes.get(granted, catalog.version, reads=[])
    assert twin.converted == len(granted)


def test_the_sandbox_pool_is_told_the_tables_a_query_reads(
    demo_server: DemoServer, analyst: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = demo_server.live.services.query
    real = service.sandboxes.get
    seen: list[list[str] | None] = []

    def spy(
        tables: list[CatalogTable], version: object, reads: Sequence[CatalogTable] | None = None
    ) -> Sandbox:
        seen.append(sorted(t.id for t in reads) if reads is not None else None)
        return real(tables, version, reads)

    monkeypatch.setattr(service.sandboxes, "get", spy)
    service.run(analyst, "SELECT count(*) AS n FROM products", limit=10)
    service.run(analyst, "SELECT 42 AS n", limit=10)
    assert seen == [["products"], []]


def test_every_refusal_code_is_exercised() -> None:
    codes = {expected for _, _, expected in CASES}
    for code in (
        "sql_parse_error",
        "multiple_statements",
        "read_only",
        "function_not_allowed",
        "table_not_found",
        "remote_table_needs_snapshot",
        "path_not_registered",
        "statement_not_allowed",
        "internal_object_not_allowed",
        "sql_too_large",
    ):
        assert code in codes


def test_refusals_carry_an_actionable_next_step(
    demo_server: DemoServer, analyst: Principal
) -> None:
    service = demo_server.live.services.query
    with pytest.raises(QueryRefused) as caught:
        service.run(analyst, "SELECT device FROM web_sessions", mode="local")
    options = caught.value.next_step["options"]  # type: ignore[index]
    assert [o["tool"] for o in options] == ["query_remote", "snapshot_create"]
    assert options[1]["arguments"]["table"] == "web_sessions"
    assert (
        "event_date" in options[1]["arguments"]["where"]
    )  # a recent slice of the partition column
    with pytest.raises(QueryRefused) as caught:
        service.run(analyst, "SELECT * FROM ordres", mode="local")
    assert caught.value.details["suggestions"] == ["orders"]
    with pytest.raises(QueryRefused) as caught:
        service.run(analyst, "SELECT * FROM supportt_tickets", mode="local")
    assert caught.value.details["suggestions"] == []  # an ungranted name is never suggested


def test_parse_errors_give_line_and_column(demo_server: DemoServer, analyst: Principal) -> None:
    with pytest.raises(QueryRefused) as caught:
        demo_server.live.services.query.run(analyst, "SELECT 1\nFROM orders\nWHERE (", mode="local")
    assert caught.value.code == "sql_parse_error"
    assert caught.value.details["line"] == 3


@pytest.mark.parametrize(
    ("mode", "sql", "token"),
    [
        # an answer whose bytes are metered (a growing aggregate, an encoder, JSON) runs
        # wrapped twice: its errors pointed a line below the caller's SQL ("line 2" of one)
        ("local", "SELECT status::JSON FROM orders", "::JSON"),
        ("local", "SELECT string_agg(status, ',') FROM orders WHERE order_date = 'x'", " = 'x'"),
        ("local", "SELECT hex(status),\n  status::INT FROM orders", "::INT"),
        ("local", "SELECT status::INT FROM orders", "::INT"),  # not metered
        ("remote", "SELECT hex(device) FROM web_sessions WHERE event_date = 'x'", "WHERE"),
    ],
)
def test_an_engine_error_points_at_the_callers_sql(
    demo_server: DemoServer, analyst: Principal, mode: str, sql: str, token: str
) -> None:
    with pytest.raises(QueryRefused) as caught:
        demo_server.live.services.query.run(analyst, sql, mode=mode, limit=10)
    error = caught.value
    assert error.code == "query_failed", error.message
    line, column = error.details["line"], error.details["column"]
    assert line is not None and column is not None, error.message
    assert sql.split("\n")[line - 1][column - 1 :].startswith(token), (line, column)


def test_an_engine_error_never_points_past_the_callers_sql(
    demo_server: DemoServer, analyst: Principal
) -> None:
    """A call a value guard wraps fails inside the guard's macro, whose own position
    DuckDB gave: "(line 2, column 4)" in a query of one line."""
    with pytest.raises(QueryRefused) as caught:
        demo_server.live.services.query.run(analyst, "SELECT range('x')", mode="local")
    error = caught.value
    assert error.code == "query_failed", error.message
    assert error.details["line"] in (None, 1), error.message
    assert "(line 2" not in error.message


@pytest.mark.parametrize(
    "sql", ["SELECT (", "SELECT x FROM t QUALIFY", "SELECT 1 IS DISTINCT FROM"]
)
def test_a_parse_error_in_a_warehouse_dialect_names_no_python_class(sql: str) -> None:
    """Remote SQL (BigQuery's dialect) is read by sqlglot alone: its problem was said with
    "<class 'sqlglot.expressions.core.Paren'>" in the agent's message."""
    with pytest.raises(SqlParseError) as caught:
        policy.parse(sql, "bigquery")
    message = caught.value.message
    assert message.startswith("The SQL does not parse: ") and "<class" not in message
    assert "sqlglot" not in message and "(line 1, column " in message
    assert caught.value.details["line"] == 1 and caught.value.details["column"] > 0


@pytest.mark.parametrize(
    ("sql", "said"),
    [
        ("orders", "'orders' is not a query"),
        ("42", "'42' is not a query"),
        ("CHECKPOINT", "not CHECKPOINT."),
        ("DEALLOCATE p", "not DEALLOCATE."),
        ("IMPORT DATABASE 'x'", "not IMPORT."),
        ("VACUUM", "not VACUUM."),
        ("BEGIN", "not BEGIN."),
        ("/* a comment */ CHECKPOINT", "not CHECKPOINT."),
        ("-- a comment\nVACUUM", "not VACUUM."),
    ],
)
def test_a_statement_that_is_no_select_is_named_as_the_user_wrote_it(
    demo_server: DemoServer, analyst: Principal, sql: str, said: str
) -> None:
    """Named by the parsers' internals, `orders` was "not COLUMN", `42` "not LITERAL",
    DEALLOCATE "not ALIAS" and IMPORT DATABASE "not PRAGMA"."""
    with pytest.raises(QueryRefused) as refused:
        demo_server.live.services.query.run(analyst, sql, mode="local")
    assert refused.value.code == "read_only" and said in refused.value.message
    for internal in ("COLUMN", "LITERAL", "ALIAS", "PRAGMA", "CALL", "DROP", "TRANSACTION"):
        assert internal not in refused.value.message
    if sql == "orders":
        assert "SELECT * FROM orders" in (refused.value.hint or "")


@pytest.mark.parametrize(
    ("sql", "said", "hinted"),
    [
        ("UNPIVOT orders ON order_id INTO NAME k VALUE v", "UNPIVOT statements", "inside a SELECT"),
        ("PIVOT orders ON status", "PIVOT statements", "inside a SELECT"),
        ("EXPLAIN SELECT 1", "EXPLAIN statements", "run the query itself"),
    ],
)
def test_statements_that_are_no_query_say_what_to_write_instead(
    demo_server: DemoServer, analyst: Principal, sql: str, said: str, hinted: str
) -> None:
    """An UNPIVOT statement was "PIVOT statements are not accepted", and PIVOT or EXPLAIN
    were told to use the schema and describe tools instead of DESCRIBE or SHOW."""
    with pytest.raises(QueryRefused) as refused:
        demo_server.live.services.query.run(analyst, sql, mode="local")
    assert refused.value.message.startswith(said)
    assert hinted in (refused.value.hint or "") and "DESCRIBE" not in (refused.value.hint or "")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM (PIVOT orders ON status USING count(*))",
        "WITH p AS (PIVOT orders ON status USING count(*)) SELECT * FROM p",
        "SELECT * FROM (PIVOT_WIDER orders ON status)",
    ],
)
def test_duckdbs_pivot_without_its_values_says_to_name_them(
    demo_server: DemoServer, analyst: Principal, sql: str
) -> None:
    """DuckDB's PIVOT ... ON without an IN list in a subquery or CTE was refused as "DuckDB
    reads this as a statement other than SELECT" with the hint to write a SELECT, which it
    was. Both queries the hint gives run once the values are filled in."""
    service = demo_server.live.services.query
    with pytest.raises(QueryRefused) as refused:
        service.run(analyst, sql, mode="local")
    assert refused.value.code == "statement_not_allowed"
    assert refused.value.message.startswith("PIVOT orders ON status without an IN list")
    hint = refused.value.hint or ""
    simplified = hint.split("lists them): ")[1].split(", or the SQL-standard ")[0]
    standard = hint.split("or the SQL-standard ")[1].removesuffix(".")
    for written in (simplified, standard):
        filled = written.replace("'<value>', ...", "'completed', 'cancelled'")
        outcome = service.run(analyst, filled, mode="local", limit=10)
        assert {"completed", "cancelled"} <= set(outcome.table.column_names)


def test_duckdbs_pivot_with_its_values_runs_inside_a_query(
    demo_server: DemoServer, analyst: Principal
) -> None:
    sql = "SELECT * FROM (PIVOT orders ON status IN ('completed') USING count(*) GROUP BY channel)"
    outcome = demo_server.live.services.query.run(analyst, sql, mode="local", limit=10)
    assert outcome.table.column_names == ["channel", "completed"]


@pytest.mark.parametrize(
    ("mode", "sql", "code", "named"),
    [
        ("local", "SELECT * FROM a.b.c.d", "table_not_found", "a.b.c.d"),
        ("local", "SELECT * FROM orders.orders.orders.orders", "table_not_found", None),
        # read as warehouse.main.web_sessions (granted), then sent to the warehouse, which
        # answered 'schema "main.x" does not exist'
        ("remote", "SELECT count(*) FROM warehouse.main.x.web_sessions", "table_not_found", None),
        ("local", 'SELECT * FROM "main.orders"', "table_not_found", "main.orders"),
        ("local", 'SELECT * FROM "_meta.users"', "table_not_found", "_meta.users"),
        ("local", "SELECT * FROM x.orders", "path_not_registered", "x.orders"),
        ("local", "SELECT * FROM main.support_tickets", "table_not_found", "support_tickets"),
    ],
)
def test_a_name_of_any_shape_is_no_table_you_may_read(
    demo_server: DemoServer,
    analyst: Principal,
    mode: str,
    sql: str,
    code: str,
    named: str | None,
) -> None:
    """``a.b.c.d`` was "'a.b.d' is not a registered table" (its third part dropped), and a
    granted table's path with a part inserted ran in the warehouse; a dotted name quoted
    whole "looked like a file path"."""
    with pytest.raises(QueryRefused) as refused:
        demo_server.live.services.query.run(analyst, sql, mode=mode)
    written = named or sql.split("FROM ", 1)[1]
    assert refused.value.code == code
    assert refused.value.message.startswith(f"There is no table '{written}' you may read")
    assert refused.value.details["table"] == written


def test_a_qualified_name_suggests_the_table_you_may_read(
    demo_server: DemoServer, analyst: Principal
) -> None:
    with pytest.raises(QueryRefused) as refused:
        demo_server.live.services.query.run(analyst, "SELECT * FROM x.orders", mode="local")
    assert "orders" in refused.value.details["suggestions"]
    assert "Did you mean 'orders'" in (refused.value.hint or "")


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=200))
def test_arbitrary_text_is_a_result_or_a_typed_refusal(
    demo_server: DemoServer, analyst: Principal, text: str
) -> None:
    started = time.monotonic()
    try:
        demo_server.live.services.query.run(analyst, text, mode="auto", limit=5)
    except QueryRefused as refusal:
        assert refusal.code and refusal.status < 600
    assert time.monotonic() - started < demo_server.live.services.settings.query_timeout_seconds + 5


SQLISH = st.lists(
    st.sampled_from(
        [
            "SELECT",
            "*",
            "FROM",
            "orders",
            "support_tickets",
            "web_sessions",
            "WHERE",
            "1=1",
            ";",
            "--",
            "/*",
            "*/",
            "'",
            '"',
            "(",
            ")",
            "UNION",
            "WITH",
            "x",
            "AS",
            "read_csv('/etc/passwd')",
            "DROP",
            "TABLE",
            "_meta",
            ",",
            "JOIN",
            "ON",
            "true",
            "LIMIT",
            "1",
            "main.",
            "warehouse.",
        ]
    ),
    max_size=25,
).map(" ".join)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sql=SQLISH)
def test_sql_shaped_noise_never_reads_what_it_may_not(
    demo_server: DemoServer, analyst: Principal, sql: str
) -> None:
    try:
        outcome = demo_server.live.services.query.run(analyst, sql, mode="auto", limit=5)
    except QueryRefused:
        return
    assert "support_tickets" not in {t.id for t in outcome.plan.tables}


@pytest.mark.parametrize("sql", ["", "  \n", "-- only a comment", "/* nothing */ ;"])
def test_empty_sql_is_not_told_of_a_line_and_column(sql: str) -> None:
    """Its hint read "Fix the SQL at the line and column given", naming none."""
    from agnes_mcp.rails.policy import parse

    with pytest.raises(QueryRefused) as refused:
        parse(sql)
    assert refused.value.code == "sql_parse_error" and refused.value.message == "The SQL is empty."
    assert "line and column" not in (refused.value.hint or "")


def test_too_long_sql_counts_its_characters_for_people() -> None:
    """It read "The SQL is 120007 characters; the limit is 100000." """
    from agnes_mcp.rails.policy import MAX_SQL_CHARS, parse

    with pytest.raises(QueryRefused) as refused:
        parse("SELECT " + "1+" * MAX_SQL_CHARS + "1")
    assert refused.value.code == "sql_too_large"
    assert f"the limit is {MAX_SQL_CHARS:,}." in refused.value.message


@pytest.mark.parametrize("sql", ["SELECT 1 -- caf\udce9", "SELECT 1,\n 'x\ud800' AS s"])
def test_sql_that_is_not_text_is_refused_where_it_is_not(sql: str) -> None:
    """SQL piped in Latin-1 (read with surrogateescape) or sent with a JSON \\udce9 escape
    reached DuckDB, which cannot take such a string: InvalidInputException escaped as a
    traceback. It is a parse refusal naming the line, column and byte."""
    from agnes_mcp.rails.checked_parse import parse_checked

    with pytest.raises(QueryRefused) as refused:
        parse_checked(sql, "duckdb")
    assert refused.value.code == "sql_parse_error"
    assert refused.value.message.startswith("The SQL is not text at line ")
    assert "UTF-8" in (refused.value.hint or "")
    if "\udce9" in sql:
        assert "line 1, column 16" in refused.value.message and "0xE9" in refused.value.message
