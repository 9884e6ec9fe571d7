"""An aggregate whose value grows with its frame (list, string_agg, json_group_array,
histogram...) over a window gives every row a copy of a value built from its whole frame,
and the answer's conversion to Arrow makes each copy, outside memory_limit (200,000
orders: 2.5 GB). Over a window it takes a short ROWS frame; plain aggregates, short
frames and other window functions answer as DuckDB does."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from agnes_mcp.rails import window_values
from agnes_mcp.rails.sandbox import Limits, Sandbox
from agnes_mcp.rails.value_guards import ValueTooLarge
from tests.test_sandbox_memory import ROWS_VIEW, GiB, MiB, peak_growth, rows_sandbox

LIMITS = Limits(rows=100_000, bytes=256 * MiB, timeout_seconds=120)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    box = rows_sandbox(tmp_path_factory.mktemp("windows"))
    yield box
    box.close()


@pytest.mark.parametrize(
    ("sql", "function"),
    [
        ("SELECT list(id) OVER () AS l FROM t", "list"),
        ("SELECT array_agg(id) OVER (PARTITION BY k) AS l FROM t", "array_agg"),
        ("SELECT string_agg(s, ',') OVER (ORDER BY id) AS l FROM t", "string_agg"),
        ("SELECT json_group_array(id) OVER () AS l FROM t", "json_group_array"),
        ("SELECT histogram(id) OVER () AS l FROM t", "histogram"),
        ("SELECT listagg(s) OVER (ORDER BY id ROWS UNBOUNDED PRECEDING) AS l FROM t", "listagg"),
        ("SELECT list(id) OVER (ORDER BY id RANGE 5 PRECEDING) AS l FROM t", "list"),
        (
            "SELECT list(id) OVER (ORDER BY id ROWS BETWEEN 500 PRECEDING AND 1 FOLLOWING) FROM t",
            "list",
        ),
        ("SELECT list(id) OVER w AS l FROM t WINDOW w AS (PARTITION BY k)", "list"),
        ("SELECT max(id, 100000) OVER () AS l FROM t", "max"),
        ("SELECT arg_max(s, id, k + 10) OVER () AS l FROM t", "arg_max"),
    ],
)
def test_a_growing_aggregate_over_a_long_frame_is_refused(
    sandbox: Sandbox, sql: str, function: str
) -> None:
    growth, outcome = peak_growth(lambda: sandbox.run(sql, LIMITS))
    assert isinstance(outcome, ValueTooLarge), outcome
    assert outcome.code == "value_too_large" and outcome.status == 400
    assert outcome.details == {"function": function, "limit_rows": window_values.MAX_FRAME_ROWS}
    assert "GROUP BY" in (outcome.hint or "")
    assert growth < 1 * GiB, f"grew {growth / MiB:.0f} MiB"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT k, list(id ORDER BY id)[1:3] AS l, string_agg(s, ',' ORDER BY id)[1:20] AS s FROM t "
        "GROUP BY k ORDER BY k",
        "SELECT id, list(id) OVER (ORDER BY id ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) AS l "
        "FROM t ORDER BY id LIMIT 20",
        "SELECT id, string_agg(s, '|') OVER (ORDER BY id ROWS BETWEEN 2 PRECEDING AND 2 FOLLOWING) "
        "AS l FROM t ORDER BY id LIMIT 20",
        "SELECT k, max(id, 3) OVER (PARTITION BY k) AS top FROM t ORDER BY id LIMIT 20",
        "SELECT id, sum(id) OVER (PARTITION BY k) AS total, max(id) OVER () AS most, "
        "row_number() OVER (ORDER BY id) AS n FROM t ORDER BY id LIMIT 20",
    ],
)
def test_plain_aggregates_and_short_frames_answer_as_duckdb_does(
    sandbox: Sandbox, sql: str
) -> None:
    with duckdb.connect() as plain:
        plain.execute(f"CREATE VIEW t AS {ROWS_VIEW}")
        expected = plain.sql(sql).to_arrow_table().to_pylist()
    assert sandbox.run(sql, LIMITS).table.to_pylist() == expected
