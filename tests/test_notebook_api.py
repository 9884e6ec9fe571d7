"""The notebook API (``agnes_mcp.notebook``) in a pulled workspace: the same answers as the
workspace's MCP tools for the same calls, refusals as one exception type, honest results in
Jupyter's HTML, the optional extras, and the read-only DuckDB connection."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from pydantic import BaseModel

from agnes_mcp.notebook import AgnesRefusal, MissingExtra, Result, Workspace
from agnes_mcp.notebook.listing import Listing
from agnes_mcp.notebook.result import VIEW_ROWS, decimal_as_float
from tests.conftest import DemoServer
from tests.notebook_harness import NotebookSetup, as_json, json_rows, pulled_notebook

REPO = Path(__file__).resolve().parents[1]
RECENT = "event_date >= DATE '2026-10-01'"
SMALL = "SELECT status, count(*) AS n FROM orders GROUP BY 1 ORDER BY 1"
LISTED = "SELECT order_id, status, order_date, total_amount FROM orders ORDER BY order_id"
REMOTE = (
    "SELECT device, count(*) AS sessions, sum(pageviews) AS pageviews FROM web_sessions "
    f"WHERE {RECENT} GROUP BY 1 ORDER BY 1"
)


@pytest.fixture(scope="module")
def nb(
    demo_server: DemoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NotebookSetup]:
    with pulled_notebook(demo_server, tmp_path_factory.mktemp("notebook")) as setup:
        yield setup


# --- results equal the tools' --------------------------------------------------------------


@dataclass(frozen=True)
class ResultCall:
    """One API call returning a Result and the tool call that should answer the same."""

    id: str
    api: Callable[[Workspace], Result]
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)


RESULT_CALLS = [
    ResultCall(
        "describe", lambda ws: ws.describe("orders", n=3), "describe", {"table": "orders", "n": 3}
    ),
    ResultCall(
        "describe-remote",
        lambda ws: ws.describe("web_sessions", n=4),
        "describe",
        {"table": "web_sessions", "n": 4},
    ),
    ResultCall("query-small", lambda ws: ws.query(SMALL), "query", {"sql": SMALL}),
    ResultCall(
        "query-cut-by-limit",
        lambda ws: ws.query(LISTED, limit=5),
        "query",
        {"sql": LISTED, "limit": 5},
    ),
    ResultCall("query-remote", lambda ws: ws.query_remote(REMOTE), "query_remote", {"sql": REMOTE}),
    ResultCall(
        "metric-grain-dimension",
        lambda ws: ws.metric(
            "revenue/total_revenue",
            dimensions=["channel"],
            grain="year",
            time_range=("2025-01-01", "2026-01-01"),
        ),
        "metric_query",
        {
            "id": "revenue/total_revenue",
            "dimensions": ["channel"],
            "grain": "year",
            "time_range": {"start": "2025-01-01", "end": "2026-01-01"},
        },
    ),
    ResultCall(
        "metric-month-filtered",
        lambda ws: ws.metric(
            "revenue/total_revenue", grain="month", filters={"channel": "web"}, limit=4
        ),
        "metric_query",
        {
            "id": "revenue/total_revenue",
            "grain": "month",
            "filters": {"channel": "web"},
            "limit": 4,
        },
    ),
    ResultCall(
        "metric-remote-total",
        lambda ws: ws.metric("product/active_users", grain="total"),
        "metric_query",
        {"id": "product/active_users", "grain": "total"},
    ),
]


@pytest.mark.parametrize("call", RESULT_CALLS, ids=[c.id for c in RESULT_CALLS])
def test_results_equal_the_tools_results(nb: NotebookSetup, call: ResultCall) -> None:
    result = call.api(nb.ws)
    tool = nb.tool(call.tool, **call.arguments).ok()
    table = result.arrow()
    assert table.num_rows > 0
    assert [c["name"] for c in tool["columns"]] == table.column_names
    assert [c["type"] for c in tool["columns"]] == [str(f.type) for f in table.schema]
    assert tool["shown_rows"] == tool["row_count"] == result.row_count == table.num_rows
    assert tool["rows"] == json_rows(table)
    assert tool["total_rows"] == result.total_rows
    assert tool["truncated"] is result.truncated
    # A warehouse's bytes are measured as read (OS counters), not computed: both scanned.
    assert (tool["bytes_scanned"] > 0) is (result.bytes_scanned > 0)
    assert tool["notes"] == result.notes
    assert tool["sql"] == result.answer.sql
    provenance = tool["provenance"]
    assert provenance["engine"] == result.provenance.engine
    assert [t["id"] for t in provenance["tables"]] == [t.id for t in result.provenance.tables]
    if call.tool == "metric_query":
        assert result.sql == tool["sql"] and "SELECT" in tool["sql"]  # the SQL Agnes wrote
    if result.truncated:
        assert tool["truncation"]["reason"] == "rows"
        assert result.cut is not None and tool["truncation"]["how_to_get_more"]
    else:
        assert result.cut is None and tool["truncation"] is None


def test_a_cut_result_says_so_like_the_tool(nb: NotebookSetup) -> None:
    result = nb.ws.query(LISTED, limit=5)
    tool = nb.tool("query", sql=LISTED, limit=5).ok()
    total = nb.ws.query("SELECT count(*) AS n FROM orders").arrow().column("n")[0].as_py()
    assert result.truncated and result.row_count == 5 and result.total_rows == total > 5
    assert tool["total_rows"] == total and tool["truncated"] is True
    assert result.cut is not None
    assert f"first 5 of {total:,} rows" in result.cut  # shown of total
    assert "limit" in result.cut.split(":", 1)[1] and "Raise" in result.cut  # the limit, the way on
    assert f"5 of {total:,} rows" in tool["truncation"]["how_to_get_more"]
    assert "truncated: " + result.cut in repr(result)


def test_the_default_limit_cuts_alike_and_the_tools_kept_result_holds_the_apis_rows(
    nb: NotebookSetup,
) -> None:
    """No limit: the default row limit cuts both; the tool shows the first rows and keeps
    the rest under a handle, which holds exactly the rows the API returned."""
    result = nb.ws.query(LISTED)
    tool = nb.tool("query", sql=LISTED).ok()
    assert result.truncated and result.row_count == tool["row_count"] == 1000
    assert result.total_rows is not None and result.total_rows > 1000
    assert result.total_rows == tool["total_rows"]
    assert result.cut is not None and "default of 1,000" in result.cut
    assert 0 < tool["shown_rows"] < 1000
    assert tool["rows"] == json_rows(result.arrow())[: tool["shown_rows"]]
    kept = nb.ws.query(f"SELECT * FROM {tool['result_handle']}", limit=5000)
    assert not kept.truncated
    assert kept.arrow().to_pylist() == result.arrow().to_pylist()


@dataclass(frozen=True)
class ModelCall:
    """An API call returning models (or a listing of them) and the tool answering the
    same; ``key`` picks the list out of the tool's structured content (None: all of it)."""

    id: str
    api: Callable[[Workspace], Any]
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)
    key: str | None = None


MODEL_CALLS = [
    ModelCall("whoami", lambda ws: ws.whoami(), "whoami"),
    ModelCall("catalog", lambda ws: list(ws.catalog()), "catalog", key="tables"),
    ModelCall("catalog-metrics", lambda ws: list(ws.catalog().metrics), "catalog", key="metrics"),
    ModelCall(
        "catalog-remote",
        lambda ws: list(ws.catalog(query_mode="remote")),
        "catalog",
        {"query_mode": "remote"},
        "tables",
    ),
    ModelCall(
        "catalog-search",
        lambda ws: list(ws.catalog(search="order")),
        "catalog",
        {"search": "order"},
        "tables",
    ),
    ModelCall(
        "schema", lambda ws: list(ws.schema("orders")), "schema", {"table": "orders"}, "columns"
    ),
    ModelCall(
        "schema-remote",
        lambda ws: list(ws.schema("web_sessions")),
        "schema",
        {"table": "web_sessions"},
        "columns",
    ),
    ModelCall(
        "snapshot-estimate",
        lambda ws: ws.snapshot_estimate("web_sessions", ["session_id", "device"], where=RECENT),
        "snapshot_estimate",
        {"table": "web_sessions", "select": ["session_id", "device"], "where": RECENT},
    ),
    ModelCall(
        "snapshot-estimate-limited",
        lambda ws: ws.snapshot_estimate(
            "web_sessions", ["device"], where=RECENT, limit=10, order_by=["device DESC"]
        ),
        "snapshot_estimate",
        {
            "table": "web_sessions",
            "select": ["device"],
            "where": RECENT,
            "limit": 10,
            "order_by": ["device DESC"],
        },
    ),
    ModelCall("metrics", lambda ws: list(ws.metrics()), "metrics_list", key="metrics"),
    ModelCall(
        "metrics-search",
        lambda ws: list(ws.metrics(search="mau")),
        "metrics_list",
        {"search": "mau"},
        "metrics",
    ),
    ModelCall(
        "metric-show",
        lambda ws: ws.metric_show("revenue/total_revenue"),
        "metric_show",
        {"id": "revenue/total_revenue"},
    ),
]


@pytest.mark.parametrize("call", MODEL_CALLS, ids=[c.id for c in MODEL_CALLS])
def test_listings_and_models_equal_the_tools(nb: NotebookSetup, call: ModelCall) -> None:
    mine = as_json(call.api(nb.ws))
    structured = nb.tool(call.tool, **call.arguments).ok()
    theirs = structured[call.key] if call.key else structured
    assert mine, "an empty answer compares nothing"
    assert mine == theirs


def test_catalog_and_schema_listings_say_what_they_hold(nb: NotebookSetup) -> None:
    catalog = nb.ws.catalog()
    ids = [entry.id for entry in catalog]
    assert "orders" in ids and "web_sessions" in ids and "support_tickets" not in ids
    assert len(catalog) == len(ids) and catalog[0].id == ids[0]
    assert "revenue/total_revenue" in {m.id for m in catalog.metrics}
    assert "<strong>Tables</strong>" in catalog._repr_html_() and "Metrics" in catalog._repr_html_()
    schema = nb.ws.schema("orders")
    rows = nb.ws.query("SELECT count(*) AS n FROM orders").arrow().column("n")[0].as_py()
    assert schema.title == f"orders (local, {rows:,} rows)"
    assert "order_date" in [c.name for c in schema]
    assert list(schema.df()["name"]) == [c.name for c in schema]


def test_snapshots_taken_either_way_are_listed_alike(nb: NotebookSetup) -> None:
    info = nb.ws.snapshot("web_sessions", ["session_id", "device"], name="nb_api", where=RECENT)
    made = nb.tool(
        "snapshot_create", table="web_sessions", select=["device"], where=RECENT, name="nb_tool"
    ).ok()
    try:
        assert info.rows > 0 and info.location == "workspace" and made["rows"] > 0
        listed = nb.tool("snapshot_list").ok()["snapshots"]
        mine = nb.ws.snapshots()
        assert {"nb_api", "nb_tool"} <= {s.name for s in mine}
        assert [s.name for s in mine] == [s["name"] for s in listed]
        assert as_json(list(mine)) == listed
        counted = nb.ws.query("SELECT count(*) AS n FROM nb_api")
        assert counted.arrow().to_pylist() == [{"n": info.rows}]
        assert counted.provenance.tables[0].query_mode == "snapshot"
        assert nb.tool("query", sql="SELECT count(*) AS n FROM nb_api").ok()["rows"] == [
            [info.rows]
        ]
    finally:
        assert nb.ws.snapshot_drop("nb_api").name == "nb_api"
        nb.tool("snapshot_drop", name="nb_tool").ok()
    assert "nb_api" not in [s["name"] for s in nb.tool("snapshot_list").ok()["snapshots"]]
    assert "nb_tool" not in [s.name for s in nb.ws.snapshots()]


# --- refusals ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """An API call Agnes refuses, the tool call refused the same way, and the code."""

    id: str
    api: Callable[[Workspace], object]
    tool: str
    arguments: dict[str, Any]
    code: str


REFUSALS = [
    Refused(
        "remote-table-in-query",
        lambda ws: ws.query("SELECT device, count(*) FROM web_sessions GROUP BY 1"),
        "query",
        {"sql": "SELECT device, count(*) FROM web_sessions GROUP BY 1"},
        "remote_table_needs_snapshot",
    ),
    Refused(
        "delete",
        lambda ws: ws.query("DELETE FROM orders"),
        "query",
        {"sql": "DELETE FROM orders"},
        "read_only",
    ),
    # Not pulled into the analyst's workspace and not in their catalog: the workspace asks
    # the server, which answers as for a table that does not exist (the catalog hides it).
    Refused(
        "query-not-granted",
        lambda ws: ws.query("SELECT * FROM support_tickets"),
        "query",
        {"sql": "SELECT * FROM support_tickets"},
        "table_not_found",
    ),
    Refused(
        "schema-not-granted",
        lambda ws: ws.schema("support_tickets"),
        "schema",
        {"table": "support_tickets"},
        "table_not_found",
    ),
    Refused(
        "snapshot-not-granted",
        lambda ws: ws.snapshot("support_tickets", ["ticket_id"], name="tickets"),
        "snapshot_create",
        {"table": "support_tickets", "select": ["ticket_id"], "name": "tickets"},
        "table_not_found",
    ),
    Refused(
        "metric-not-granted",
        lambda ws: ws.metric("operations/support_resolution_time"),
        "metric_query",
        {"id": "operations/support_resolution_time"},
        "metric_not_found",
    ),
    Refused(
        "metric-bad-dimension",
        lambda ws: ws.metric("revenue/total_revenue", dimensions=["colour"]),
        "metric_query",
        {"id": "revenue/total_revenue", "dimensions": ["colour"]},
        "metric_request_invalid",
    ),
    Refused(
        "parse-error",
        lambda ws: ws.query("SELEC 1"),
        "query",
        {"sql": "SELEC 1"},
        "sql_parse_error",
    ),
]


@pytest.mark.parametrize("case", REFUSALS, ids=[c.id for c in REFUSALS])
def test_refusals_raise_agnes_refusal_with_the_tools_fields(
    nb: NotebookSetup, case: Refused
) -> None:
    with pytest.raises(AgnesRefusal) as raised:
        case.api(nb.ws)
    refusal = raised.value
    error = nb.tool(case.tool, **case.arguments).error()
    assert refusal.code == error["code"] == case.code
    assert refusal.message == error["message"] and refusal.message
    assert refusal.hint == error["hint"]
    assert as_json(refusal.next_step) == error.get("next_step")
    assert str(refusal).startswith(f"[{case.code}] {refusal.message}")
    assert refusal.__cause__ is not None  # the rails' own error, kept for who wants it


def test_a_remote_table_in_query_says_how_to_get_its_rows(nb: NotebookSetup) -> None:
    sql = "SELECT device, count(*) AS n FROM web_sessions GROUP BY 1"
    with pytest.raises(AgnesRefusal) as raised:
        nb.ws.query(sql)
    refusal = raised.value
    assert refusal.code == "remote_table_needs_snapshot" and refusal.hint
    assert refusal.next_step is not None
    options = refusal.next_step["options"]
    assert [o["tool"] for o in options] == ["query_remote", "snapshot_create"]
    assert options[0]["arguments"]["sql"] == sql
    assert options[1]["arguments"]["table"] == "web_sessions"
    assert "event_date" in options[1]["arguments"]["where"]
    assert nb.ws.query_remote(sql).row_count > 0  # the first option works as given


def test_a_refusal_renders_readably_in_ipython_and_html(nb: NotebookSetup) -> None:
    with pytest.raises(AgnesRefusal) as raised:
        nb.ws.query("SELECT device FROM web_sessions")
    lines = raised.value._render_traceback_()
    assert lines[0].startswith("AgnesRefusal: [remote_table_needs_snapshot] 'web_sessions'")
    assert lines[1].startswith("hint: ") and "`ws.query_remote()`" in lines[1]
    assert lines[2].startswith("next step: ws.query_remote(sql=")  # a call to run, not JSON
    assert lines[3].startswith("       or: ws.snapshot(table='web_sessions', ")
    assert not any("Traceback" in line or ".py" in line for line in lines)
    rendered = raised.value._repr_html_()
    assert "Refused: remote_table_needs_snapshot" in rendered and "ws.query_remote(" in rendered
    with pytest.raises(AgnesRefusal) as marked_up:
        nb.ws.query('SELECT * FROM "<b>orders"')
    assert "<b>orders" in marked_up.value.message
    page = marked_up.value._repr_html_()
    assert "&lt;b&gt;orders" in page and "<b>orders" not in page
    assert f"[{marked_up.value.code}]" in marked_up.value._render_traceback_()[0]


# --- results in a notebook -----------------------------------------------------------------


def test_df_and_pl_hold_the_arrow_data(nb: NotebookSetup) -> None:
    result = nb.ws.query(LISTED, limit=20)
    rows = result.arrow().to_pylist()
    frame = result.df()
    assert list(frame.columns) == result.arrow().column_names and len(frame) == 20
    # typed as DuckDB's own .df(): dates as datetime64, decimals as float64
    assert str(frame["order_date"].dtype).startswith("datetime64")
    assert str(frame["total_amount"].dtype) == "float64"
    for record, row in zip(frame.to_dict("records"), rows, strict=True):
        assert record["order_date"].date() == row["order_date"]
        assert record["total_amount"] == float(row["total_amount"])
        assert record["order_id"] == row["order_id"] and record["status"] == row["status"]
    polars = result.pl()
    assert polars.columns == result.arrow().column_names
    assert polars.to_dicts() == rows
    assert len(result) == 20


def test_intervals_are_durations_in_df_and_pl_as_duckdb_makes_them(nb: NotebookSetup) -> None:
    sql = (
        "SELECT INTERVAL '2 months 3 days 00:00:05.25' AS i UNION ALL SELECT -INTERVAL 90 MINUTE "
        "UNION ALL SELECT NULL ORDER BY i NULLS LAST"
    )
    result = nb.ws.query(sql)
    expected = duckdb.sql(sql).df()
    frame = result.df()
    assert str(frame["i"].dtype) == "timedelta64[us]"
    assert frame["i"].tolist()[:2] == expected["i"].tolist()[:2]  # a month as 30 days
    assert frame["i"].isna().tolist() == [False, False, True]
    polars = result.pl()  # polars itself refuses Arrow's interval type
    assert str(polars.schema["i"]) == "Duration(time_unit='us')"
    assert polars["i"].to_list()[:2] == [
        timedelta(minutes=-90),
        timedelta(days=63, seconds=5.25),
    ]
    assert polars["i"].to_list()[2] is None
    assert pa.types.is_interval(result.arrow().schema.field("i").type)  # Arrow keeps it


def test_integers_and_booleans_with_nulls_keep_their_values_in_df(nb: NotebookSetup) -> None:
    """Arrow's to_pandas made an integer column holding a NULL float64: a BIGINT id past
    2**53 came out as another number, silently. DuckDB's own .df() gives pandas'
    nullable types there (and plain ones where there is no NULL); so does this."""
    sql = (
        "SELECT * FROM (VALUES (9007199254740993::BIGINT, 7::INTEGER, 200::UTINYINT, true, 1), "
        "(NULL, NULL, NULL, NULL, 2)) t(id, n, u, flag, whole) ORDER BY whole"
    )
    frame = nb.ws.query(sql).df()
    expected = duckdb.sql(sql).df()
    assert [str(t) for t in frame.dtypes] == [str(t) for t in expected.dtypes]
    assert [str(t) for t in frame.dtypes] == ["Int64", "Int32", "UInt8", "boolean", "int32"]
    assert frame["id"][0] == 9007199254740993 and frame["id"].isna().tolist() == [False, True]
    assert frame["flag"].tolist()[0] is True and frame["flag"].isna().tolist() == [False, True]
    nested = nb.ws.query("SELECT [9007199254740993, NULL]::BIGINT[] AS l").df()["l"][0]
    assert list(nested) == [9007199254740993, None]  # in a list too, not a float64 array
    assert frame.attrs["agnes"]["truncated"] is False


def test_intervals_inside_lists_structs_and_maps_are_durations_too(nb: NotebookSetup) -> None:
    """Only a column that was an INTERVAL became a duration: in a list, struct or map
    polars panicked (a Rust panic, not an exception a notebook catches) and pandas held
    DateOffset objects; they are durations there too, as DuckDB's .df() has them."""
    sql = (
        "SELECT [INTERVAL 1 DAY, NULL] AS l, {'i': INTERVAL 2 HOUR, 'n': 1} AS s, "
        "MAP {'a': INTERVAL 3 MONTH} AS m"
    )
    result = nb.ws.query(sql)
    polars = result.pl()
    assert str(polars.schema["l"]) == "List(Duration(time_unit='us'))"
    assert polars.row(0) == (
        [timedelta(days=1), None],
        {"i": timedelta(hours=2), "n": 1},
        {"a": timedelta(days=90)},  # a month as 30 days
    )
    row = result.df().iloc[0]
    assert str(row["l"].dtype) == "timedelta64[us]"  # as DuckDB's .df() has it
    assert row["l"][0] == timedelta(days=1) and str(row["l"][1]) == "NaT"
    assert row["s"] == {"i": timedelta(hours=2), "n": 1}
    assert row["m"] == {"a": timedelta(days=90)}  # a map as a dict, as DuckDB's .df() has it
    assert pa.types.is_interval(result.arrow().schema.field("l").type.value_type)  # Arrow keeps it


def test_a_map_reaches_df_as_a_dict_as_duckdb_makes_it(nb: NotebookSetup) -> None:
    """Arrow's default made a MAP a list of (key, value) pairs, so ``row["m"]["k"]``,
    which works on DuckDB's own .df(), failed; keys no dict can hold stay pairs."""
    sql = "SELECT MAP {'k': 1, 'j': 2} AS m, [MAP {'a': 'b'}] AS l, {'s': MAP {'x': 3}} AS s"
    row = nb.ws.query(sql).df().iloc[0]
    expected = duckdb.sql(sql).df().iloc[0]
    assert row["m"] == expected["m"] == {"k": 1, "j": 2}
    assert list(row["l"]) == list(expected["l"]) == [{"a": "b"}]
    assert row["s"] == expected["s"] == {"s": {"x": 3}}
    pairs = nb.ws.query("SELECT MAP {[1, 2]: 'a'} AS m, 1 AS n").df().iloc[0]
    assert [(list(k), v) for k, v in pairs["m"]] == [([1, 2], "a")] and pairs["n"] == 1


def test_an_enum_reaches_df_ordered_as_duckdb_makes_it(nb: NotebookSetup) -> None:
    """Arrow carries a DuckDB ENUM as an unordered dictionary: its .df() column was an
    unordered categorical, on which max() and < raise TypeError (DuckDB's own work)."""
    sql = "SELECT s::ENUM('s', 'm', 'l') AS size FROM (VALUES ('m'), ('l'), (NULL)) t(s)"
    frame = nb.ws.query(sql).df()
    expected = duckdb.sql(sql).df()
    assert frame["size"].cat.ordered and expected["size"].cat.ordered
    assert list(frame["size"].cat.categories) == ["s", "m", "l"]
    assert frame["size"].max() == expected["size"].max() == "l"
    assert (frame["size"] > "s").tolist() == [True, True, False]


def test_a_date_inside_a_struct_or_map_reaches_df_as_a_date(nb: NotebookSetup) -> None:
    """Arrow made a DATE inside a STRUCT or MAP a datetime, which equals no date: a filter
    on it matched nothing, silently. DuckDB's own .df() has a date there."""
    sql = (
        "SELECT {'d': DATE '2024-01-02', 'n': 1} AS s, MAP {'k': DATE '2024-01-03'} AS m, "
        "DATE '2024-01-04' AS d"
    )
    row = nb.ws.query(sql).df().iloc[0]
    expected = duckdb.sql(sql).df().iloc[0]
    assert row["s"] == expected["s"] == {"d": date(2024, 1, 2), "n": 1}
    assert row["m"] == expected["m"] == {"k": date(2024, 1, 3)}
    assert str(nb.ws.query(sql).df()["d"].dtype).startswith("datetime64")  # a column stays


def test_a_time_of_24_00_reaches_df_and_pl(nb: NotebookSetup) -> None:
    """DuckDB's TIME holds 24:00:00, Python's time does not: .df() raised 'hour must be
    in 0..23' for the whole frame (in a list or struct too). DuckDB's .df() has the
    text there, and a time elsewhere."""
    sql = (
        "SELECT 1 AS n, TIME '24:00:00' AS t, [TIME '24:00:00', TIME '10:11:12.5', NULL] AS l, "
        "{'t': TIME '24:00:00'} AS s, TIME '23:59:59' AS ok"
    )
    result = nb.ws.query(sql)
    frame = result.df()
    assert list(frame.columns) == ["n", "t", "l", "s", "ok"]  # in their places
    row = frame.iloc[0]
    assert row["t"] == duckdb.sql(sql).df().iloc[0]["t"] == "24:00:00"
    assert list(row["l"]) == ["24:00:00", dt_time(10, 11, 12, 500_000), None]
    assert row["s"] == {"t": "24:00:00"} and row["ok"] == dt_time(23, 59, 59)
    # polars' Time made 24:00:00 null, silently (as DuckDB's own .pl() does): as .df() has it
    polars = result.pl()
    assert polars.columns == ["n", "t", "l", "s", "ok"]
    assert polars.row(0) == (
        1,
        "24:00:00",
        ["24:00:00", dt_time(10, 11, 12, 500_000), None],
        {"t": "24:00:00"},
        dt_time(23, 59, 59),
    )
    assert str(polars.schema["ok"]) == "Time"  # a column without 24:00:00 keeps its type
    mixed = nb.ws.query("SELECT {'name': 'x', 't': TIME '10:00'} AS s").pl()
    assert str(mixed.schema["s"]) == "Struct({'name': String, 't': Time})"


def test_a_24_00_time_left_of_a_union_reaches_pl_in_its_place(nb: NotebookSetup) -> None:
    """.pl() put the UNION columns back before the TIME columns holding 24:00:00: with
    the TIME to the left it raised IndexError ("column index 2 is out of range")."""
    sql = "SELECT TIME '24:00:00' AS t, 'x' AS s, union_value(k := 1) AS u, TIME '24:00:00' AS t2"
    result = nb.ws.query(sql)
    polars = result.pl()
    assert polars.columns == ["t", "s", "u", "t2"]
    assert polars.rows() == [("24:00:00", "x", 1, "24:00:00")]
    assert result.df().iloc[0].tolist() == ["24:00:00", "x", 1, "24:00:00"]


def test_a_union_reaches_df_and_pl_as_its_values(nb: NotebookSetup) -> None:
    """A UNION column (DuckDB's union_value) made .df() raise ArrowNotImplementedError
    and .pl() a ComputeError for the whole frame: pandas and polars have no union type.
    Each holds the member's value, as DuckDB's own .df() has it; Arrow keeps the union."""
    sql = (
        "SELECT 1 AS n, union_value(num := 2)::UNION(num INTEGER, str VARCHAR) AS u, "
        "[union_value(s := 'x')::UNION(i INTEGER, s VARCHAR)] AS l "
        "UNION ALL SELECT 2, union_value(str := 'b'), NULL ORDER BY n"
    )
    result = nb.ws.query(sql)
    frame = result.df()
    assert list(frame.columns) == ["n", "u", "l"]  # in their places
    assert frame["u"].tolist() == duckdb.sql(sql).df()["u"].tolist() == [2, "b"]
    assert frame["l"].tolist() == [["x"], None]
    polars = result.pl()
    assert polars.columns == ["n", "u", "l"]
    assert polars.rows() == [(1, 2, ["x"]), (2, "b", None)]
    assert pa.types.is_union(result.arrow().schema.field("u").type)
    empty = nb.ws.query(f"SELECT * FROM ({sql}) WHERE n > 2")  # no rows: no chunk at all
    assert repr(empty).startswith("<Result: 0 rows>\nn\tu\tl\n")  # no ArrowNotImplementedError
    assert "<th>u</th>" in empty._repr_html_() and empty.df().empty and empty.pl().is_empty()


def test_html_shows_values_as_duckdb_writes_them(nb: NotebookSetup) -> None:
    """The HTML view wrote each value as Python's str: a struct as {'t':
    datetime.datetime(2024, 1, 1, 10, 0)}, a DECIMAL(10,2) 1.10 as 1.10 but a timestamp
    with six digits, a list as ['a,b', 'c']; and a TIME 24:00:00 or a year past 9999
    made the view itself fail (ValueError). It writes them as the CLI's table does."""
    sql = (
        "SELECT TIMESTAMP '2024-01-01 10:11:12.120' AS ts, {'t': TIMESTAMP '2024-01-01 10:00:00'} "
        "AS s, ['a,b', 'c'] AS l, true AS b, TIME '24:00:00' AS t24, TIMESTAMP '12000-01-01' AS far"
    )
    page = nb.ws.query(sql)._repr_html_()
    cells = re.findall(r"<td>(.*?)</td>", page)
    assert [html.unescape(c) for c in cells] == [
        "2024-01-01 10:11:12.12",
        "{'t': '2024-01-01 10:00:00'}",
        "['a,b', c]",
        "true",
        "24:00:00",
        "12000-01-01 00:00:00",
    ]


def test_html_shows_counts_and_the_cut(nb: NotebookSetup) -> None:
    result = nb.ws.query(LISTED, limit=5)
    page = result._repr_html_()
    assert f"5 of {result.total_rows:,} rows" in page
    assert result.cut is not None and "Truncated: " in page
    assert html.escape(result.cut) in page  # "first 5 of N rows", the limit, how to get more
    assert "this view shows" not in page  # all 5 rows are in the view
    assert page.count("<tr>") == 1 + 5
    assert "duckdb (workspace)" in page and "orders (local" in page  # the provenance line
    whole = nb.ws.query(SMALL)._repr_html_()
    assert "Truncated" not in whole and "rows</strong>" in whole


def test_the_plain_repr_shows_the_rows_as_the_html_does(nb: NotebookSetup) -> None:
    """The text a terminal IPython or ``print(result)`` shows held the counts and the
    provenance but not one row; it now shows the view's rows, written as DuckDB writes
    them, and says what the view leaves out."""
    sql = (
        "SELECT order_id, status, NULL AS nothing, repeat('y', 400) AS long "
        "FROM orders ORDER BY order_id"
    )
    result = nb.ws.query(sql, limit=VIEW_ROWS + 2)
    lines = repr(result).split("\n")
    header = lines.index("order_id\tstatus\tnothing\tlong")
    first = result.arrow().slice(0, 1).to_pylist()[0]
    assert lines[header + 1].split("\t")[:3] == [str(first["order_id"]), first["status"], "NULL"]
    assert lines[header + 1].endswith("…(+100 chars)")
    said = lines.index(
        f"(this view shows the first {VIEW_ROWS} of the {VIEW_ROWS + 2:,} rows returned; "
        "all of them are in .df() / .arrow())"
    )
    assert said - header - 1 == VIEW_ROWS  # the view's rows, not all of them
    assert "values longer than 300 characters are shortened" in lines[said + 1]
    assert repr(result).startswith(f"<Result: {VIEW_ROWS + 2} of ")  # the counts stay first


def test_the_plain_repr_never_hands_a_terminal_a_values_escape_codes(
    nb: NotebookSetup,
) -> None:
    """The rows in the text are data: an escape sequence in a value (or a column's name)
    is shown escaped, as the CLI's table shows it, so printing a result cannot recolour,
    retitle or rewrite the terminal."""
    result = nb.ws.query("SELECT chr(27) || '[31mred' || chr(7) AS \"x\x1b[2J\", 1 AS n")
    text = repr(result)
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b[31mred\\x07\t1" in text and "x\\x1b[2J\tn" in text
    assert result.arrow().column(0)[0].as_py() == "\x1b[31mred\x07"  # the data is whole


def test_a_refusal_shown_in_place_of_a_traceback_escapes_the_values_it_quotes(
    nb: NotebookSetup,
) -> None:
    """The engine's message quotes the value it could not convert: its escape codes
    reached the terminal IPython printed the refusal on."""
    with pytest.raises(AgnesRefusal) as refused:
        nb.ws.query("SELECT (chr(27) || '[2Jx')::INT")
    shown = refused.value._render_traceback_()
    assert "\x1b" not in "".join(shown) and "'\\x1b[2Jx'" in shown[0]
    assert "\x1b[2Jx" in refused.value.message  # the message itself is as the engine said


def test_a_listings_plain_repr_shows_escape_codes_escaped() -> None:
    """A listing's text holds what admins wrote (descriptions, notes): shown escaped."""

    class Entry(BaseModel):
        id: str
        description: str

    listing = Listing(
        "Tables", [Entry(id="t", description="\x1b]0;title\x07x")], ["id", "description"]
    )
    assert repr(listing) == "Tables (1)\n  t · \\x1b]0;title\\x07x"


def test_a_cut_result_of_unknown_size_says_more_exist_after_its_rows(nb: NotebookSetup) -> None:
    """A remote answer cut by its limit has no total: its counts read "2 (more exist)
    rows"; they read as the tools' do, "2 rows (more exist)"."""
    for limit, said in ((2, "2 rows (more exist)"), (1, "1 row (more exist)")):
        result = nb.ws.query_remote(REMOTE, limit=limit)
        assert result.truncated and result.total_rows is None
        assert repr(result).startswith(f"<Result: {said}>")
        assert f"<strong>{said}</strong>" in result._repr_html_()


def test_html_says_when_it_shows_fewer_rows_than_returned(nb: NotebookSetup) -> None:
    result = nb.ws.query(LISTED, limit=VIEW_ROWS + 10)
    page = result._repr_html_()
    assert result.row_count == VIEW_ROWS + 10
    assert f"this view shows the first {VIEW_ROWS} of the {VIEW_ROWS + 10:,} rows returned" in page
    assert page.count("<tr>") == 1 + VIEW_ROWS
    assert len(result.df()) == VIEW_ROWS + 10  # the data is all there


def test_html_shortens_long_values_as_the_tools_do(nb: NotebookSetup) -> None:
    """A view of 50 rows of wide text stays a page, not tens of megabytes for the browser
    and the saved .ipynb: values past the tools' CELL_CHARS end in "…(+N chars)"."""
    wide = ", ".join(f"repeat('x', 60000) AS c{i}" for i in range(20))
    result = nb.ws.query(f"SELECT {wide}, 'short' AS s FROM orders", limit=VIEW_ROWS)
    page = result._repr_html_()
    assert len(page) < 1_000_000, len(page)
    assert "x" * 300 + "…(+59,700 chars)" not in page  # the tools' own format, below
    assert "x" * 300 + "…(+59700 chars)" in page and "<td>short</td>" in page
    assert "values longer than 300 characters are shortened in this view" in page
    assert len(result.arrow().column("c0")[0].as_py()) == 60000  # the data is whole
    assert "shortened" not in nb.ws.query(SMALL)._repr_html_()


def test_html_escapes_values(nb: NotebookSetup) -> None:
    result = nb.ws.query("SELECT '<script>alert(1)</script>' AS s, NULL AS missing")
    assert result.arrow().to_pylist() == [{"s": "<script>alert(1)</script>", "missing": None}]
    page = result._repr_html_()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<i>null</i>" in page


def test_missing_pandas_or_polars_names_the_extra(
    nb: NotebookSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = nb.ws.query(SMALL)
    listing = nb.ws.snapshots()
    monkeypatch.setitem(sys.modules, "pandas", None)
    monkeypatch.setitem(sys.modules, "polars", None)
    for frame in (result.df, result.pl, listing.df):
        with pytest.raises(MissingExtra) as missing:
            frame()
        assert "agnes[notebook]" in str(missing.value)
        assert isinstance(missing.value, ImportError)
    assert result.arrow().num_rows == 3  # Arrow needs no extra


# --- ws.duckdb() ---------------------------------------------------------------------------


def test_duckdb_is_read_only_and_sees_the_pulled_tables(nb: NotebookSetup) -> None:
    con = nb.ws.duckdb()
    try:
        counted = con.execute("SELECT status, count(*) AS n FROM orders GROUP BY 1 ORDER BY 1")
        assert [list(r) for r in counted.fetchall()] == json_rows(nb.ws.query(SMALL).arrow())
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("CREATE TABLE scratch AS SELECT 1 AS one")
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("DROP VIEW orders")
    finally:
        con.close()


def test_duckdb_sees_a_snapshot_taken_through_the_api(nb: NotebookSetup) -> None:
    info = nb.ws.snapshot("web_sessions", ["session_id", "device"], name="nb_duck", where=RECENT)
    try:
        con = nb.ws.duckdb()
        try:
            assert con.execute("SELECT count(*) FROM nb_duck").fetchone() == (info.rows,)
        finally:
            con.close()
    finally:
        nb.ws.snapshot_drop("nb_duck")


def test_a_new_duckdb_connection_sees_a_snapshot_while_an_older_one_is_open(
    nb: NotebookSetup,
) -> None:
    """A notebook keeps its first ``ws.duckdb()`` open (jupysql's ``%sql conn``); a later
    ``ws.duckdb()`` must still name what is in the workspace now."""
    older = nb.ws.duckdb()
    try:
        info = nb.ws.snapshot(
            "web_sessions", ["session_id", "device"], name="nb_later", where=RECENT
        )
        try:
            newer = nb.ws.duckdb()
            try:
                assert newer.execute("SELECT count(*) FROM nb_later").fetchone() == (info.rows,)
            finally:
                newer.close()
        finally:
            nb.ws.snapshot_drop("nb_later")
    finally:
        older.close()


# --- importing is cheap --------------------------------------------------------------------

HEAVY = {"pyarrow", "duckdb", "pandas", "polars", "IPython", "sqlglot"}
SERVER_APP = {"fastapi", "starlette", "uvicorn", "fastmcp", "mcp", "panel", "bokeh"}


def modules_after(code: str) -> set[str]:
    """The modules (top-level names, and agnes_mcp's own) loaded by ``code`` in a fresh
    interpreter."""
    shown = (
        "import json, sys; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} "
        "| {m for m in sys.modules if m.startswith('agnes_mcp.')})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{shown}"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_the_package_loads_no_data_library_and_no_server() -> None:
    loaded = modules_after("import agnes_mcp.notebook")
    assert "agnes_mcp.notebook" in loaded
    assert loaded & (HEAVY | SERVER_APP) == set()
    assert {m for m in loaded if m.startswith("agnes_mcp.")} == {"agnes_mcp.notebook"}


def test_taking_connect_loads_no_notebook_extra_and_no_server() -> None:
    loaded = modules_after("from agnes_mcp.notebook import connect, AgnesRefusal, Result")
    assert "agnes_mcp.notebook.connection" in loaded
    assert loaded & ({"pandas", "polars", "IPython"} | SERVER_APP) == set()
    assert "agnes_mcp.api" not in loaded and "agnes_mcp.mcp_server.server" not in loaded


def test_the_package_names_what_it_exports() -> None:
    import agnes_mcp.notebook as notebook

    assert notebook.connect is connect_function()
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        notebook.nope  # noqa: B018


def connect_function() -> object:
    from agnes_mcp.notebook.connection import connect

    return connect


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["2280.97", "0.10", "-12.34", None, "99999999.99"], pa.decimal128(12, 2)),
        (["12345678901234567890.123", "-1.001", None], pa.decimal128(38, 3)),  # too wide: text
        ([None, None], pa.decimal128(5, 1)),
    ],
)
def test_decimals_become_the_nearest_doubles(values: list[str | None], kind: pa.DataType) -> None:
    column = pa.chunked_array([pa.array([Decimal(v) if v else None for v in values], kind)])
    floats = decimal_as_float(column, kind.scale).to_pylist()
    assert floats == [float(Decimal(v)) if v else None for v in values]


OUT_OF_RANGE: list[tuple[str, Callable[[Workspace], object], str]] = [
    ("limit-zero", lambda ws: ws.query("SELECT 1", limit=0), "limit"),
    ("limit-negative", lambda ws: ws.query("SELECT 1", limit=-5), "limit"),
    ("describe-zero", lambda ws: ws.describe("orders", n=0), "n"),
    ("describe-many", lambda ws: ws.describe("orders", n=1000), "n"),
    (
        "not-a-day",
        lambda ws: ws.metric("revenue/total_revenue", time_range=("2026-13-01", "2027-01-01")),
        "start",  # of the time range
    ),
    (
        "select-text",
        lambda ws: ws.snapshot("web_sessions", "session_id,device", name="x"),
        "select",
    ),
    # Values of the wrong type raised TypeError or IndexError from Agnes's insides, a
    # string of dimensions was read letter by letter ("no dimension 'c'"), and a bad
    # query_mode reached the server as the REST API's invalid_request.
    ("sql-not-text", lambda ws: ws.query(123), "sql"),
    ("limit-text", lambda ws: ws.query("SELECT 1", limit="many"), "limit"),
    (
        "dimensions-text",
        lambda ws: ws.metric("revenue/total_revenue", dimensions="channel"),
        "dimensions",
    ),
    (
        "time-range-one-day",
        lambda ws: ws.metric("revenue/total_revenue", time_range=("2026-01-01",)),
        "time_range",
    ),
    ("mode-unknown", lambda ws: ws.catalog(query_mode="bogus"), "query_mode"),
    ("table-not-text", lambda ws: ws.describe(["orders"]), "table"),
]


@pytest.mark.parametrize(
    ("api", "argument"), [c[1:] for c in OUT_OF_RANGE], ids=[c[0] for c in OUT_OF_RANGE]
)
def test_arguments_out_of_range_are_refused_as_invalid_arguments(
    nb: NotebookSetup, api: Callable[[Workspace], object], argument: str
) -> None:
    """Not read as "no limit", not DuckDB's binder error, not pydantic's own exception."""
    with pytest.raises(AgnesRefusal) as raised:
        api(nb.ws)
    refusal = raised.value
    assert refusal.code == "invalid_arguments"
    assert refusal.details["problems"][0]["argument"].split(".")[0] == argument
    assert argument in refusal.message


BOOL_FOR_NUMBER: list[tuple[str, Callable[[Workspace], object], str]] = [
    ("query-limit", lambda ws: ws.query("SELECT 1", limit=True), "limit"),
    ("query-remote-limit", lambda ws: ws.query_remote("SELECT 1", limit=True), "limit"),
    ("describe-n", lambda ws: ws.describe("orders", n=True), "n"),
    (
        "estimate-limit",
        lambda ws: ws.snapshot_estimate("web_sessions", ["session_id"], limit=True),
        "limit",
    ),
    (
        "snapshot-ttl",
        lambda ws: ws.snapshot("web_sessions", ["session_id"], name="x", ttl_seconds=True),
        "ttl_seconds",
    ),
    ("metric-limit", lambda ws: ws.metric("revenue/total_revenue", limit=False), "limit"),
]


@pytest.mark.parametrize(
    ("api", "argument"), [c[1:] for c in BOOL_FOR_NUMBER], ids=[c[0] for c in BOOL_FOR_NUMBER]
)
def test_a_bool_for_a_number_is_refused_naming_the_argument(
    nb: NotebookSetup, api: Callable[[Workspace], object], argument: str
) -> None:
    """``limit=True`` is an int to Python, and was taken as a one-row limit (``n=True``
    one sample row): every number argument refuses a bool, by one check of the API's."""
    with pytest.raises(AgnesRefusal) as raised:
        api(nb.ws)
    refusal = raised.value
    assert refusal.code == "invalid_arguments"
    problem = refusal.details["problems"][0]
    assert problem["argument"] == argument and "not true or false" in problem["problem"]
    assert argument in refusal.message


def test_a_refusal_speaks_the_notebook_api() -> None:
    """Its hint named MCP tools ("List the tables you may use with the catalog tool") and
    its next step was the tool call as JSON; shown, they are the notebook's calls. The
    refusal's own fields keep the tools' words."""
    from agnes_mcp.notebook.refusal import next_calls

    refusal = AgnesRefusal(
        "table_not_found",
        "There is no table 'ordrs' you may read.",
        hint="List the tables you may use with the catalog tool; drop it (snapshot_drop).",
        next_step={"tool": "catalog", "arguments": {"search": "ordrs"}, "cli": "agnes catalog"},
    )
    assert str(refusal).splitlines()[1:] == [
        "hint: List the tables you may use with `ws.catalog()`; drop it (`ws.snapshot_drop()`).",
        "next step: ws.catalog(search='ordrs')",
    ]
    assert refusal.hint is not None and "the catalog tool" in refusal.hint
    assert next_calls({"tool": "metric_query", "arguments": {"id": "a/b", "grain": "month"}}) == [
        "ws.metric(metric_id='a/b', grain='month')"
    ]
    assert next_calls({"tool": None, "arguments": {}, "cli": "agnes pull"}) == ["ws.pull()"]
    created = {"tool": "snapshot_create", "arguments": {"table": "t", "select": ["a"]}}
    created["arguments"] |= {"name": "n", "ttl_hours": 2}
    assert next_calls({"options": [created]}) == [
        "ws.snapshot(table='t', select=['a'], name='n', ttl_seconds=7200)"
    ]


def test_dates_python_has_none_for_reach_df_and_pl_as_text(nb: NotebookSetup) -> None:
    """DuckDB's DATE and TIMESTAMP hold infinity and years past 9999: .pl() panicked when
    the frame was shown (a Rust panic, 'out-of-range date'), .df() showed infinity as the
    date 5881580-07-11. Such a column holds objects: dates where Python has them, DuckDB's
    own text elsewhere; a column without one keeps its type."""
    sql = (
        "SELECT * FROM (VALUES "
        "('infinity'::DATE, '-infinity'::TIMESTAMP, 'infinity'::TIMESTAMPTZ, DATE '2024-01-02'), "
        "(DATE '2024-01-01', TIMESTAMP '2024-01-01 10:00:00', TIMESTAMPTZ '2024-01-01 10:00:00+00', "
        "DATE '2024-01-03'), "
        "(DATE '12000-01-01', NULL, NULL, NULL)) AS t(d, ts, tz, ok)"
    )
    result = nb.ws.query(sql)
    moment = datetime(2024, 1, 1, 10)
    expected = [
        ("infinity", "-infinity", "infinity", date(2024, 1, 2)),
        (date(2024, 1, 1), moment, moment.replace(tzinfo=UTC), date(2024, 1, 3)),
        ("12000-01-01", None, None, None),
    ]
    polars = result.pl()
    repr(polars)  # where the panic was
    assert polars.rows() == expected
    assert str(polars.schema["ok"]) == "Date"
    frame = result.df()
    repr(frame)
    assert frame["d"].tolist() == ["infinity", date(2024, 1, 1), "12000-01-01"]
    assert frame["ts"].tolist()[:2] == ["-infinity", moment]
    assert frame["tz"].tolist()[:2] == ["infinity", moment.replace(tzinfo=UTC)]
    assert str(frame.dtypes["ok"]).startswith("datetime64")  # no such value: its type kept
