"""``%agnes`` and ``%%agnes_sql`` in a real IPython shell, against a demo server and the
analyst's pulled workspace: the commands, ``-o``, variables bound as literals (never SQL
text), ``--remote``, refusals shown as refusals, and cut results that say so."""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlglot
from IPython.core.error import UsageError
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from IPython.utils.capture import CapturedIO, capture_output
from sqlglot import exp

from agnes_mcp.notebook import AgnesRefusal, Result, Workspace
from agnes_mcp.notebook.magics import RESULT_VAR, WORKSPACE_VAR
from agnes_mcp.notebook.refusal import notebook_words
from agnes_mcp.notebook.sql_params import BindError, bind, literal, remote_dialects
from tests.conftest import DemoServer, pull_into_workspace
from tests.notebook_harness import isolated_env

RECENT = dt.date(2026, 10, 1)
INJECTIONS = [
    "a'); DROP TABLE t; --",
    "' OR '1'='1",
    "\\' OR 1=1 --",
    "x */ OR 1=1 /* ",
    "line\nbreak -- and a comment",
    "naïve \u2018quotes\u2019 and {braces}",
]


@pytest.fixture(scope="module")
def folder(demo_server: DemoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("magics")
    with isolated_env(root):
        yield pull_into_workspace(
            demo_server.live.base_url, demo_server.analyst_token, root / "workspace"
        )


@pytest.fixture(scope="module")
def ip(
    demo_server: DemoServer, folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InteractiveShell]:
    """An embedded IPython shell with the extension loaded and the magics connected to the
    pulled workspace through ``%agnes connect``."""
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(
        config=config, ipython_dir=str(tmp_path_factory.mktemp("ipython"))
    )
    before = set(shell.user_ns)
    ok(shell, "%load_ext agnes_mcp.notebook")
    url, token = demo_server.live.base_url, demo_server.analyst_token
    ok(shell, f"%agnes connect {folder} --server-url {url} --token {token}")
    yield shell
    shell.user_ns.pop(WORKSPACE_VAR).close()
    for name in set(shell.user_ns) - before:  # the shell outlives this module
        del shell.user_ns[name]


@pytest.fixture
def ws(ip: InteractiveShell) -> Workspace:
    found = ip.user_ns[WORKSPACE_VAR]
    assert isinstance(found, Workspace)
    return found


def run(shell: InteractiveShell, code: str) -> tuple[ExecutionResult, CapturedIO]:
    with capture_output() as io:
        result: ExecutionResult = shell.run_cell(code)  # type: ignore[no-untyped-call]
    return result, io


def ok(shell: InteractiveShell, code: str) -> tuple[Any, CapturedIO]:
    """Run ``code``; it must succeed. Its value and what it printed and displayed."""
    result, io = run(shell, code)
    assert result.success, (result.error_in_exec or result.error_before_exec, io.stdout, io.stderr)
    return result.result, io


def fails(shell: InteractiveShell, code: str, kind: type[BaseException]) -> tuple[Any, CapturedIO]:
    result, io = run(shell, code)
    assert isinstance(result.error_in_exec, kind), (result.error_in_exec, io.stdout, io.stderr)
    return result.error_in_exec, io


def sql_cell(options: str, sql: str) -> str:
    return f"%%agnes_sql {options}\n{sql}\n"


def rows(result: Result) -> list[dict[str, Any]]:
    return result.arrow().to_pylist()  # type: ignore[no-any-return]


# --- the extension and %agnes ---------------------------------------------------------------


def test_load_ext_registers_the_line_and_the_cell_magic(ip: InteractiveShell) -> None:
    magics = ip.magics_manager.magics
    assert "agnes" in magics["line"] and "agnes_sql" in magics["cell"]
    ok(ip, "%load_ext agnes_mcp.notebook")  # loading again changes nothing
    _, io = ok(ip, "%agnes help")
    for command in ("catalog", "schema", "describe", "pull", "snapshots", "connect", "use"):
        assert re.search(rf"^%agnes {command}\b", io.stdout, re.MULTILINE), io.stdout
    assert "%%agnes" not in io.stdout and "::" not in io.stdout


def test_catalog_lists_the_analysts_tables_and_filters(ip: InteractiveShell) -> None:
    catalog, io = ok(ip, "%agnes catalog")
    ids = {entry.id for entry in catalog}
    assert {"orders", "customers", "web_sessions"} <= ids and "support_tickets" not in ids
    assert "revenue/total_revenue" in {m.id for m in catalog.metrics}
    assert "orders" in io.stdout  # shown as the cell's value
    found, _ = ok(ip, "%agnes catalog order")
    assert "orders" in {e.id for e in found} and len(found) < len(catalog)
    remote, _ = ok(ip, "%agnes catalog --mode remote")
    assert "web_sessions" in {e.id for e in remote}
    assert {e.query_mode for e in remote} == {"remote"}


def test_schema_of_orders(ip: InteractiveShell) -> None:
    schema, _ = ok(ip, "%agnes schema orders")
    names = [column.name for column in schema]
    assert {"order_id", "customer_id", "order_date", "status", "total_amount"} <= set(names)
    assert schema.title.startswith("orders (local")


def test_describe_with_a_row_count(ip: InteractiveShell) -> None:
    described, _ = ok(ip, "%agnes describe orders 3")
    assert isinstance(described, Result) and described.row_count == 3
    assert "order_id" in described.arrow().column_names


def test_metrics_and_whoami(ip: InteractiveShell) -> None:
    metrics, _ = ok(ip, "%agnes metrics revenue")
    ids = {m.id for m in metrics}
    assert "revenue/total_revenue" in ids and "product/active_users" not in ids
    me, _ = ok(ip, "%agnes whoami")
    assert "Analysts" in me.groups and not me.is_admin


def test_snapshots_lists_a_snapshot_taken_beside_the_magics(
    ip: InteractiveShell, ws: Workspace
) -> None:
    ws.snapshot(
        "web_sessions",
        ["session_id", "device"],
        where=f"event_date >= DATE '{RECENT}'",
        name="recent_sessions",
    )
    try:
        listed, _ = ok(ip, "%agnes snapshots")
        assert [s.name for s in listed] == ["recent_sessions"]
        assert listed[0].table_id == "web_sessions" and listed[0].rows > 0
        # ... and a cell queries it like any local table
        result, _ = ok(ip, sql_cell("", "SELECT count(*) AS n FROM recent_sessions"))
        assert rows(result) == [{"n": listed[0].rows}]
    finally:
        ws.snapshot_drop("recent_sessions")
    listed, _ = ok(ip, "%agnes snapshots")
    assert len(listed) == 0


def test_pull_says_what_it_did(ip: InteractiveShell, ws: Workspace) -> None:
    value, io = ok(ip, "%agnes pull")
    assert value is None
    said = re.search(
        r"(\d+) tables: downloaded (\d+) files \(.* bytes\), (\d+) unchanged", io.stdout
    )
    assert said is not None, io.stdout
    tables, downloaded, unchanged = map(int, said.groups())
    assert downloaded == 0 and unchanged > 0 and tables > 0  # the module's pull already ran
    assert "failed" not in io.stderr


def test_an_unknown_command_is_a_usage_error_with_a_suggestion(ip: InteractiveShell) -> None:
    _, io = fails(ip, "%agnes catalgo", UsageError)
    assert "no command 'catalgo'" in io.stderr and "Did you mean 'catalog'" in io.stderr
    _, io = fails(ip, "%agnes schema", UsageError)  # a missing argument: argparse's words
    assert "table" in io.stderr


def test_the_first_use_connects_to_the_workspace_of_the_current_folder(
    ip: InteractiveShell,
    folder: Path,
    demo_server: DemoServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mine = ip.user_ns.pop(WORKSPACE_VAR)
    monkeypatch.setenv("AGNES_SERVER_URL", demo_server.live.base_url)
    monkeypatch.setenv("AGNES_TOKEN", demo_server.analyst_token)
    (folder / "analysis").mkdir(exist_ok=True)
    monkeypatch.chdir(folder / "analysis")
    try:
        me, io = ok(ip, "%agnes whoami")
        made = ip.user_ns[WORKSPACE_VAR]
        assert isinstance(made, Workspace) and made is not mine
        assert made.kind == "workspace" and made.root == folder
        assert f"Connected: <Agnes workspace {folder}" in io.stdout and WORKSPACE_VAR in io.stdout
        assert "Analysts" in me.groups
        _, io = ok(ip, "%agnes whoami")
        assert "Connected" not in io.stdout and ip.user_ns[WORKSPACE_VAR] is made  # kept
        made.close()
    finally:
        ip.user_ns[WORKSPACE_VAR] = mine


def test_use_hands_the_magics_a_workspace_of_your_own(
    ip: InteractiveShell, folder: Path, demo_server: DemoServer
) -> None:
    mine = ip.user_ns[WORKSPACE_VAR]
    url, token = demo_server.live.base_url, demo_server.analyst_token
    ok(
        ip,
        f"from agnes_mcp.notebook import connect\nown = connect({str(folder)!r}, server_url={url!r}, token={token!r})",
    )
    try:
        used, _ = ok(ip, "%agnes use own")
        assert used is ip.user_ns["own"] is ip.user_ns[WORKSPACE_VAR]
        _, io = fails(ip, "%agnes use missing_name", UsageError)
        assert "'missing_name' is not set" in io.stderr
        ip.user_ns[WORKSPACE_VAR] = "not a workspace"
        _, io = fails(ip, "%agnes catalog", UsageError)
        assert f"{WORKSPACE_VAR} holds a str, not an Agnes Workspace" in io.stderr
    finally:
        ip.user_ns.pop("own").close()
        ip.user_ns[WORKSPACE_VAR] = mine


# --- %%agnes_sql --------------------------------------------------------------------------

BY_STATUS = "SELECT status, count(*) AS n FROM orders GROUP BY 1 ORDER BY 1"
LISTED = "SELECT order_id, status FROM orders ORDER BY order_id"


def test_a_cell_returns_its_result_and_keeps_it(ip: InteractiveShell, ws: Workspace) -> None:
    result, io = ok(ip, sql_cell("", BY_STATUS))
    assert isinstance(result, Result) and ip.user_ns[RESULT_VAR] is result
    assert rows(result) == rows(ws.query(BY_STATUS)) and len(rows(result)) > 1
    assert "Out[" in io.stdout and f"<Result: {result.row_count} rows>" in io.stdout
    assert result.provenance.tables[0].id == "orders"


def test_o_stores_a_dataframe_and_shows_the_result_once(
    ip: InteractiveShell, ws: Workspace
) -> None:
    value, io = ok(ip, sql_cell("-o by_status", BY_STATUS))
    assert value is None and "Out[" not in io.stdout  # no cell value: shown once, by display
    frame = ip.user_ns["by_status"]
    assert isinstance(frame, pd.DataFrame)
    pd.testing.assert_frame_equal(frame, ws.query(BY_STATUS).df())
    assert len(io.outputs) == 1
    shown = io.outputs[0].data
    assert "agnes-result" in shown["text/html"] and "agnes-provenance" in shown["text/html"]
    assert isinstance(ip.user_ns[RESULT_VAR], Result)
    assert ip.user_ns[RESULT_VAR].row_count == len(frame)


def test_a_limit_cuts_and_the_shown_result_says_so(ip: InteractiveShell, ws: Workspace) -> None:
    total = rows(ws.query("SELECT count(*) AS n FROM orders"))[0]["n"]
    assert total > 3
    result, io = ok(ip, sql_cell("--limit 3", LISTED))
    assert result.row_count == 3 and result.truncated and result.total_rows == total
    cut = f"first 3 of {total:,} rows: --limit 3. Raise --limit"
    assert result.cut is not None and result.cut.startswith(cut)
    assert f"truncated: {cut}" in io.stdout  # the value's text, as a terminal shows it
    _, io = ok(ip, sql_cell("--limit 3 -o first_three", LISTED))
    assert len(ip.user_ns["first_three"]) == 3
    shown = io.outputs[0].data["text/html"]
    assert f"3 of {total:,} rows" in shown and f"Truncated: {cut}" in shown
    whole, _ = ok(ip, sql_cell("", BY_STATUS))
    assert whole.cut is None and not whole.truncated


def test_the_default_limit_is_named_by_the_magics_flag(ip: InteractiveShell) -> None:
    result, _ = ok(ip, sql_cell("", LISTED))
    assert result.truncated and result.cut is not None
    assert "no --limit was given, so the default of 1,000 applied. Pass --limit N" in result.cut


BINDINGS = [
    pytest.param(
        {"email": "customer7@example.com"},
        "SELECT customer_id FROM customers WHERE email = {email}",
        "SELECT customer_id FROM customers WHERE email = 'customer7@example.com'",
        id="str",
    ),
    pytest.param(
        {"n": 7},
        "SELECT email FROM customers WHERE customer_id = {n}",
        "SELECT email FROM customers WHERE customer_id = 7",
        id="int",
    ),
    pytest.param(
        {"least": 100.5, "most": decimal.Decimal("300.25")},
        "SELECT count(*) AS n FROM orders WHERE total_amount BETWEEN {least} AND {most}",
        "SELECT count(*) AS n FROM orders WHERE total_amount BETWEEN 100.5 AND 300.25",
        id="float-decimal",
    ),
    pytest.param(
        {"since": dt.date(2025, 6, 1)},
        "SELECT count(*) AS n, min(order_date) AS first FROM orders WHERE order_date >= {since}",
        "SELECT count(*) AS n, min(order_date) AS first FROM orders WHERE order_date >= DATE '2025-06-01'",
        id="date",
    ),
    pytest.param(
        {"ids": [3, 5, 8]},
        "SELECT customer_id FROM customers WHERE customer_id IN {ids} ORDER BY 1",
        "SELECT customer_id FROM customers WHERE customer_id IN (3, 5, 8) ORDER BY 1",
        id="list",
    ),
    pytest.param(
        {"statuses": ("cancelled", "refunded")},
        "SELECT status, count(*) AS n FROM orders WHERE status IN {statuses} GROUP BY 1 ORDER BY 1",
        "SELECT status, count(*) AS n FROM orders WHERE status IN ('cancelled', 'refunded') GROUP BY 1 ORDER BY 1",
        id="tuple-of-str",
    ),
    pytest.param(
        {"nothing": None},
        "SELECT {nothing} IS NULL AS is_null, count(*) AS n FROM customers WHERE email = {nothing}",
        "SELECT NULL IS NULL AS is_null, count(*) AS n FROM customers WHERE email = NULL",
        id="None",
    ),
    pytest.param(
        {"flag": True},
        "SELECT count(*) AS n FROM products WHERE active = {flag}",
        "SELECT count(*) AS n FROM products WHERE active = TRUE",
        id="bool",
    ),
    pytest.param(  # a value taken out of a pandas frame: "{flag} is a bool; only ... bool"
        {"flag": np.bool_(True)},
        "SELECT count(*) AS n FROM products WHERE active = {flag}",
        "SELECT count(*) AS n FROM products WHERE active = TRUE",
        id="numpy-bool",
    ),
]


@pytest.mark.parametrize(("values", "cell", "written"), BINDINGS)
def test_variables_are_bound_as_literals(
    ip: InteractiveShell, ws: Workspace, values: dict[str, Any], cell: str, written: str
) -> None:
    ip.user_ns.update(values)
    result, _ = ok(ip, sql_cell("", cell))
    expected = rows(ws.query(written))
    assert rows(result) == expected and expected
    assert any(value for row in expected for value in row.values())  # not a vacuous match
    assert not any(f"{{{name}}}" in result.sql for name in values)


@pytest.mark.parametrize("nasty", INJECTIONS)
def test_an_injection_attempt_stays_one_string(
    ip: InteractiveShell, ws: Workspace, nasty: str
) -> None:
    ip.user_ns["x"] = nasty
    cell = "SELECT {x} AS s, count(*) AS n FROM customers WHERE name = {x} OR email = {x}"
    result, _ = ok(ip, sql_cell("", cell))
    assert rows(result) == [{"s": nasty, "n": 0}]  # matched literally: no customer has it
    assert rows(ws.query("SELECT count(*) AS n FROM customers"))[0]["n"] > 0
    statements = sqlglot.parse(result.sql, dialect="duckdb")
    assert len(statements) == 1 and isinstance(statements[0], exp.Select)
    strings = [lit.this for lit in statements[0].find_all(exp.Literal) if lit.is_string]
    assert strings == [nasty, nasty, nasty]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(-1, 6), (-1.5, 6.5), (decimal.Decimal("-2"), 7)],
    ids=["int", "float", "decimal"],
)
def test_a_negative_number_after_a_minus_is_subtracted_not_a_comment(
    ip: InteractiveShell, value: object, expected: object
) -> None:
    """``5-{x}`` with ``x = -1`` was written ``5--1``: DuckDB read ``--1`` and the rest of
    the line as a comment and answered 5, dropping the condition after it."""
    ip.user_ns["x"] = value
    cell = "SELECT 5-{x} AS v, count(*) AS n FROM products WHERE 1-{x} = 0"
    result, _ = ok(ip, sql_cell("", cell))
    assert rows(result) == [{"v": expected, "n": 0}]
    assert bind("SELECT 5-{x}", {"x": -1}, ["bigquery"]) == "SELECT 5-(-1)"


def test_braces_in_strings_and_comments_are_text_and_doubled_braces_are_literal(
    ip: InteractiveShell,
) -> None:
    ip.user_ns["x"] = 5
    ip.user_ns.pop("undefined_here", None)
    cell = (
        "-- {undefined_here} in a comment is text\n"
        "SELECT '{undefined_here}' AS in_string, /* {undefined_here} */ {x} AS bound,\n"
        "       {'k': 1} AS struct, {{'k': {x}}} AS escaped, '{{x}}' AS doubled_in_string"
    )
    result, _ = ok(ip, sql_cell("", cell))
    assert rows(result) == [
        {
            "in_string": "{undefined_here}",
            "bound": 5,
            "struct": {"k": 1},
            "escaped": {"k": 5},
            "doubled_in_string": "{{x}}",
        }
    ]


def test_an_unknown_name_is_a_usage_error_naming_it(ip: InteractiveShell) -> None:
    ip.user_ns.pop("nope", None)
    ip.user_ns[RESULT_VAR] = "stale"
    error, io = fails(ip, sql_cell("", "SELECT * FROM orders WHERE status = {nope}"), UsageError)
    assert "{nope}: there is no variable 'nope'" in str(error) and "{{nope}}" in str(error)
    assert "UsageError: {nope}" in io.stderr and "Traceback" not in io.stderr + io.stdout
    assert ip.user_ns[RESULT_VAR] is None


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ({"a": 1}, "{v} is a dict; only str, int"),
        (float("nan"), "{v} is nan, which has no SQL literal"),
        ([], "{v} is an empty list"),
        ([[1, 2]], "{v} holds a nested list"),
        (b"bytes", "{v} is a bytes"),
        # was CAST('NaT' AS TIMESTAMP): the engine's "invalid timestamp field format"
        (pd.NaT, "{v} is NaT, which has no SQL literal; use None for NULL"),
    ],
    ids=["dict", "nan", "empty-list", "nested-list", "bytes", "nat"],
)
def test_values_without_a_literal_are_refused_clearly(
    ip: InteractiveShell, value: object, said: str
) -> None:
    ip.user_ns["v"] = value
    error, _ = fails(
        ip, sql_cell("", "SELECT count(*) AS n FROM orders WHERE order_id IN {v}"), UsageError
    )
    assert said in str(error)


def test_a_remote_cell_runs_in_the_warehouse_with_bound_values(
    ip: InteractiveShell, ws: Workspace
) -> None:
    ip.user_ns["since"] = RECENT
    ip.user_ns["devices"] = ["desktop", "mobile"]
    cell = (
        "SELECT device, count(*) AS sessions FROM web_sessions "
        "WHERE event_date >= {since} AND device IN {devices} GROUP BY 1 ORDER BY 1"
    )
    result, _ = ok(ip, sql_cell("--remote -o remote_frame", cell))
    assert result is None
    kept = ip.user_ns[RESULT_VAR]
    written = (
        "SELECT device, count(*) AS sessions FROM web_sessions WHERE event_date >= "
        f"DATE '{RECENT}' AND device IN ('desktop', 'mobile') GROUP BY 1 ORDER BY 1"
    )
    assert rows(kept) == rows(ws.query_remote(written))
    assert [r["device"] for r in rows(kept)] == ["desktop", "mobile"]
    assert [t.query_mode for t in kept.provenance.tables] == ["remote"] and kept.bytes_scanned > 0
    assert list(ip.user_ns["remote_frame"]["device"]) == ["desktop", "mobile"]


def test_a_refusal_is_shown_as_one_and_leaves_the_variable_alone(ip: InteractiveShell) -> None:
    ip.user_ns["keep"] = "before"
    error, io = fails(ip, sql_cell("-o keep", "SELECT * FROM web_sessions"), AgnesRefusal)
    assert error.code == "remote_table_needs_snapshot" and error.hint
    assert f"AgnesRefusal: [{error.code}]" in io.stdout
    assert f"hint: {notebook_words(error.hint, WORKSPACE_VAR)}" in io.stdout
    assert "`%%agnes_sql --remote`" in io.stdout  # the magic, not ws.query_remote()
    assert "Traceback" not in io.stdout and "magics.py" not in io.stdout  # no internals
    assert ip.user_ns["keep"] == "before" and ip.user_ns[RESULT_VAR] is None


def test_a_table_not_granted_is_refused(ip: InteractiveShell) -> None:
    error, io = fails(ip, sql_cell("", "SELECT count(*) FROM support_tickets"), AgnesRefusal)
    assert error.code in io.stdout and error.message in io.stdout


def test_bad_options_and_an_empty_cell_are_usage_errors(ip: InteractiveShell) -> None:
    for options, said in [
        ("--limit 0", "--limit must be 1 or more"),
        ("-o 1frame", "'1frame' is not a Python variable name"),
        ("-o class", "'class' is not a Python variable name"),
        ("--limit many", "invalid int value"),
        ("--nope", "unrecognized arguments"),
    ]:
        _, io = fails(ip, sql_cell(options, BY_STATUS), UsageError)
        assert said in io.stderr, (options, io.stderr)
    _, io = fails(ip, "%%agnes_sql\n  \n", UsageError)
    assert "holds no SQL" in io.stderr


# --- literals, dialect by dialect (no shell needed) ------------------------------------------


@pytest.mark.parametrize("dialect", ["duckdb", "bigquery"])
@pytest.mark.parametrize("nasty", INJECTIONS)
def test_a_string_is_one_literal_in_each_dialect(dialect: str, nasty: str) -> None:
    sql = bind("SELECT a FROM t WHERE b = {x}", {"x": nasty}, [dialect])
    statements = sqlglot.parse(sql, dialect=dialect)
    assert len(statements) == 1 and isinstance(statements[0], exp.Select)
    where = statements[0].args["where"].this
    assert isinstance(where, exp.EQ) and where.expression.is_string
    assert where.expression.this == nasty


def test_literals_are_written_for_the_dialect() -> None:
    assert literal("it's", dialect="duckdb") == "'it''s'"
    assert literal("it's", dialect="bigquery") == "'it\\'s'"
    assert literal(dt.date(2026, 1, 31)) == "CAST('2026-01-31' AS DATE)"
    assert literal(dt.datetime(2026, 1, 31, 8, 30)) == "CAST('2026-01-31 08:30:00' AS TIMESTAMP)"
    assert literal([1, "a", None, True]) == "(1, 'a', NULL, TRUE)"


def test_a_remote_cell_takes_the_dialect_of_the_tables_it_names() -> None:
    engines = {"web_sessions": "duckdb", "events": "bigquery"}
    assert remote_dialects("SELECT * FROM events WHERE d = {x}", engines) == ["bigquery"]
    assert remote_dialects("select * from WEB_SESSIONS", engines) == ["duckdb"]
    assert remote_dialects("SELECT * FROM `p.d.events_raw`", engines) == ["bigquery", "duckdb"]
    assert remote_dialects("SELECT 1", {}) == ["duckdb"]
    # A value written alike in both binds; one that differs is refused, not guessed.
    assert bind("SELECT {n}, {d}", {"n": 3, "d": dt.date(2026, 1, 1)}, ["bigquery", "duckdb"])
    with pytest.raises(BindError, match="written differently in bigquery and duckdb"):
        bind("SELECT {s}", {"s": "it's"}, ["bigquery", "duckdb"])


def test_an_interval_in_a_list_reaches_the_frame_o_stores(ip: InteractiveShell) -> None:
    """``-o`` stores ``.df()``: a list of INTERVALs there held DateOffset objects."""
    ok(ip, sql_cell("-o spans", "SELECT [INTERVAL 1 DAY] AS l"))
    spans = ip.user_ns["spans"]
    assert str(spans["l"][0].dtype) == "timedelta64[us]"
    assert spans["l"][0][0] == dt.timedelta(days=1)


def test_a_magics_refusal_names_the_magics_and_agnes_ws_not_ws(ip: InteractiveShell) -> None:
    """A refusal of a magic named the notebook API on `ws` (hint: `ws.catalog()`, next
    step: ws.query_remote(sql=...)), a variable a notebook of magics has not got (a
    NameError when run); it names the magic where there is one, else agnes_ws's call."""
    ip.user_ns.pop("ws", None)
    error, io = fails(ip, sql_cell("", "SELECT * FROM web_sessions"), AgnesRefusal)
    assert "`%%agnes_sql --remote`" in io.stdout and "`agnes_ws.snapshot()`" in io.stdout
    assert "next step: agnes_ws.query_remote(sql='SELECT * FROM web_sessions')" in io.stdout
    assert " ws." not in io.stdout and "`ws." not in io.stdout
    error, io = fails(ip, "%agnes describe no_such_table", AgnesRefusal)
    assert "`%agnes catalog`" in io.stdout
    assert "next step: agnes_ws.catalog(search='no_such_table')" in io.stdout
    assert error.next_step and error.next_step["tool"] == "catalog"  # .next_step: the tool's
    ok(ip, "agnes_ws.catalog(search='no_such_table')")  # the next step runs as written
